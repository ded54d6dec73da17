"""The LLM endpoint and how the recommendation decides, configured from the environment (secrets via EnvVar)."""

from dagster import ConfigurableResource
from pydantic import Field

from fks_pipelines.lib.llm.client import InProcessVLLM, OpenAICompatibleClient


class LLMResource(ConfigurableResource):
    """vLLM (or any OpenAI-compatible server). Without a base URL there is no model: the rules engine decides."""

    base_url: str | None = Field(default=None, description="e.g. http://vllm:8000/v1 (FKS_LLM_BASE_URL).")
    model: str | None = Field(default=None, description="The served model's name (FKS_LLM_MODEL).")
    api_key: str | None = Field(default=None, description="Bearer token, if the server wants one (FKS_LLM_API_KEY).")
    timeout_s: float = Field(default=60.0, description="Per request.")
    retries: int = Field(default=2, description="Retries on timeouts, connection errors and 5xx.")
    engine: str = Field(
        default="http", description="http (a vLLM server) or in_process (vllm.LLM in this run; the gpu extra)."
    )

    def client(self) -> OpenAICompatibleClient | InProcessVLLM | None:
        if self.engine == "in_process":
            if not self.model:
                raise ValueError("engine in_process needs a model (FKS_LLM_MODEL)")
            return InProcessVLLM(self.model)
        if not self.base_url:
            return None
        return OpenAICompatibleClient(
            self.base_url, self.model or "default", self.api_key, self.timeout_s, self.retries
        )


class RecommenderResource(ConfigurableResource):
    """How the daily recommendation decides beyond its generator: whether the rules engine acts on the record of
    what followed its past decisions (lib/recommend/feedback.py). The record is shown either way."""

    feedback: bool = Field(
        default=False,
        description="Calibrate the rules engine's confidence by the realised outcomes per (strategy, regime)"
        " (FKS_FEEDBACK; off by default, see docs/evaluation.md).",
    )

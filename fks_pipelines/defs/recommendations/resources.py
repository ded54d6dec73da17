"""The LLM endpoint and the Discord webhook, both configured from the environment (secrets via EnvVar)."""

from dagster import ConfigurableResource
from pydantic import Field

from fks_pipelines.lib.llm.client import OpenAICompatibleClient


class LLMResource(ConfigurableResource):
    """vLLM (or any OpenAI-compatible server). Without a base URL there is no model: the rules engine decides."""

    base_url: str | None = Field(default=None, description="e.g. http://vllm:8000/v1 (FKS_LLM_BASE_URL).")
    model: str | None = Field(default=None, description="The served model's name (FKS_LLM_MODEL).")
    api_key: str | None = Field(default=None, description="Bearer token, if the server wants one (FKS_LLM_API_KEY).")
    timeout_s: float = Field(default=60.0, description="Per request.")
    retries: int = Field(default=2, description="Retries on timeouts, connection errors and 5xx.")

    def client(self) -> OpenAICompatibleClient | None:
        if not self.base_url:
            return None
        return OpenAICompatibleClient(self.base_url, self.model or "default", self.api_key, self.timeout_s, self.retries)


class DiscordResource(ConfigurableResource):
    webhook_url: str | None = Field(default=None, description="DISCORD_WEBHOOK_URL; unset: notifications are skipped.")

"""A client for vLLM's OpenAI-compatible chat completions API, with structured output.

Structured output uses ``response_format`` ``{"type": "json_schema", ...}`` (vLLM's OpenAI-compatible server
enforces it; the older ``guided_json`` parameter is gone). Timeouts, connection errors and 5xx answers are
retried with backoff; 4xx answers are not (the request itself is wrong).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx


class LLMError(Exception):
    """The model could not be asked or did not answer usably (after retries)."""


@dataclass(frozen=True)
class LLMReply:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    attempts: int


@dataclass
class OpenAICompatibleClient:
    base_url: str  # e.g. http://vllm:8000/v1
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    retries: int = 2
    backoff_s: float = 0.5
    max_tokens: int = 2048

    def chat(self, messages: list[dict], schema: dict, schema_name: str = "account_recommendation") -> LLMReply:
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            },
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url.rstrip("/") + "/chat/completions"
        last = "no attempt"
        started = time.perf_counter()
        for attempt in range(1, self.retries + 2):
            try:
                response = httpx.post(url, json=body, headers=headers, timeout=self.timeout_s)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout_s:g}s"
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if response.status_code < 400:
                    return self._reply(response, started, attempt)
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code < 500 and response.status_code != 429:
                    break
            if attempt <= self.retries:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        raise LLMError(f"{url}: {last} (after {attempt} attempt{'s' if attempt > 1 else ''})")

    def _reply(self, response: httpx.Response, started: float, attempt: int) -> LLMReply:
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"not a chat completion ({type(e).__name__}): {response.text[:300]}") from None
        if not isinstance(text, str):
            raise LLMError("the completion has no text content")
        usage = data.get("usage") or {}
        return LLMReply(
            text,
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            (time.perf_counter() - started) * 1000,
            attempt,
        )


@dataclass
class InProcessVLLM:
    """vLLM's engine inside the current process (``pip install '.[gpu]'``), for batch use in a GPU run: the
    same ``chat(messages, schema)`` as the HTTP client, the same prompt and schema, structured output through
    ``StructuredOutputsParams(json=...)`` (vLLM >= 0.12). Loaded on first use; one engine per process."""

    model: str
    max_tokens: int = 2048
    _engine: Any = None  # vllm.LLM, an optional dependency loaded on first use

    def chat(self, messages: list[dict], schema: dict, schema_name: str = "account_recommendation") -> LLMReply:
        from vllm import LLM, SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        if self._engine is None:
            self._engine = LLM(model=self.model)
        params = SamplingParams(
            temperature=0.0, max_tokens=self.max_tokens, structured_outputs=StructuredOutputsParams(json=schema)
        )
        started = time.perf_counter()
        try:
            (output,) = self._engine.chat(messages, params, use_tqdm=False)
        except Exception as e:  # the engine's own errors become the same fallback path as the HTTP client's
            raise LLMError(f"in-process vLLM: {type(e).__name__}: {e}") from e
        completion = output.outputs[0]
        return LLMReply(
            completion.text,
            len(output.prompt_token_ids or []),
            len(completion.token_ids or []),
            (time.perf_counter() - started) * 1000,
            1,
        )

"""The recommendations layer is built from the settings the code location reads once: the LLM settings shape the
daily recommendation's definition (a GPU step only with vLLM in its own process; the openai kind only with an LLM)."""

from __future__ import annotations

from dagster import AssetKey

from fks_pipelines.defs import recommendations
from fks_pipelines.defs.shared import GPU_POOL, GPU_TAG_KEY
from fks_pipelines.settings import Settings

DAILY = AssetKey(["recommendations", "daily"])


def daily(env: dict[str, str]):
    defs = recommendations.build_defs(Settings.from_env(env, recorded=False))
    return next(a for a in defs.assets or [] if DAILY in a.keys)


def test_only_an_in_process_llm_makes_the_daily_recommendation_a_gpu_step():
    in_process = daily({"FKS_LLM_ENGINE": "in_process", "FKS_LLM_MODEL": "some/model"})
    assert in_process.op.tags.get(GPU_TAG_KEY) == "true" and in_process.op.pool == GPU_POOL
    over_http = daily({"FKS_LLM_BASE_URL": "http://vllm:8000/v1"})
    assert GPU_TAG_KEY not in over_http.op.tags and over_http.op.pool is None
    (spec,) = over_http.specs
    assert {"openai", "postgres"} <= set(spec.kinds)
    (rules_only,) = daily({}).specs
    assert "openai" not in rules_only.kinds

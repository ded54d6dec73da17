"""The code location: every layer's definitions merged, the resources wired from the environment.

Secrets reach resources through ``EnvVar`` (shown as the variable's name in the UI, never its value);
everything else comes from ``settings.Settings``. ``fks dev`` / ``fks demo`` set ``FKS_DATABASE_URL`` to the
embedded server when no external database is configured.
"""

from __future__ import annotations

from dagster import Definitions, EnvVar, with_source_code_references
from dagster_shared.record import copy

from fks_pipelines.defs import analytics, automation, dbt, knowledge, portfolio, raw, recommendations
from fks_pipelines.defs.analytics.resources import QuantResource
from fks_pipelines.defs.dbt.resources import dbt_resource
from fks_pipelines.defs.recommendations.resources import LLMResource, RecommenderResource
from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, NotifierResource, PostgresResource
from fks_pipelines.launchers.executors import step_executor
from fks_pipelines.settings import settings as read_settings

settings = read_settings()

resources = {
    "database": PostgresResource(
        url=EnvVar("FKS_DATABASE_URL"),
        timescaledb=settings.timescaledb,
        chunk_interval=settings.ts_chunk_interval,
        compress_after=settings.ts_compress_after,
    ),
    "dbt": dbt_resource(),
    "market_data": MarketDataResource(
        source=settings.source,
        market=settings.market,
        interval=settings.interval,
        symbols=list(settings.symbols),
        sample_seed=settings.sample_seed,
        rest_base_url=settings.rest_base_url,
        rest_max_retry_after_s=settings.binance_max_retry_after_s,
        archive_base_url=settings.archive_base_url,
        archive_cache_dir=str(settings.archive_cache_dir),
        freqtrade_dir=str(settings.freqtrade_dir),
    ),
    "quant": QuantResource(
        choice_every_days=settings.choice_every_days,
        choice_min_dsr=settings.choice_min_dsr,
        lookahead_policy=settings.lookahead_policy,
        sweep_workers=settings.sweep_workers,
        strategies_dir=str(settings.strategies_dir) if settings.strategies_dir else None,
        strategy_max_grid=settings.strategy_max_grid,
        strategy_timeout_s=settings.strategy_timeout_s,
    ),
    "embedding_model": EmbeddingModelResource(
        model=settings.embedding_model, model_path=settings.embedding_model_path, device=settings.embedding_device
    ),
    # Optional secrets: an EnvVar only when the variable is set (unset: no LLM -> rules engine; no webhook).
    "llm": LLMResource(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        engine=settings.llm_engine,
        api_key=EnvVar("FKS_LLM_API_KEY") if settings.llm_api_key else None,
        timeout_s=settings.llm_timeout_s,
        retries=settings.llm_max_attempts - 1,
    ),
    "recommender": RecommenderResource(feedback=settings.feedback),
    "notifier": NotifierResource(
        discord_webhook_url=EnvVar("DISCORD_WEBHOOK_URL") if settings.discord_webhook_url else None,
        ui_url=settings.ui_url,
    ),
}


def _definitions() -> Definitions:
    merged = Definitions.merge(
        raw.defs,
        dbt.defs,
        analytics.defs,
        knowledge.defs,
        recommendations.build_defs(settings),
        portfolio.defs,
        automation.build_defs(settings),
        Definitions(resources=resources, executor=step_executor(settings.executor, settings.gpu_image)),
    )
    # Each asset links to the file and line of its code in the UI (dbt models: their .sql, set by the translator).
    return copy(merged, assets=with_source_code_references(list(merged.assets or [])))


# The one Definitions object at module level, so `dagster ... -m fks_pipelines.definitions` finds it without `-a`.
defs = _definitions()

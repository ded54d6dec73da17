"""The main job run once over 24 days of sample data, shared by the analytics and knowledge tests."""

from __future__ import annotations

import psycopg
import pytest
from dagster import DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.definitions import defs
from fks_pipelines.defs.dbt.resources import dbt_resource
from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, PostgresResource

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
# Row counts of the platform's own tables right after the shared run, before any later test writes to its database
# (e.g. the recommendation tests re-materialize portfolio/profit_splits there): per table, and per day for the
# daily tables (the day a row describes, as its partition does).
ROWS_AFTER_PIPELINE: dict[str, int] = {}
DAILY_ROWS_AFTER_PIPELINE: dict[str, dict[str, int]] = {}
DAY_OF_ROW = {
    "analytics.signals": "bucket::date::text",
    "knowledge.documents": "((as_of AT TIME ZONE 'UTC') - interval '1 microsecond')::date::text",
    "recommendations.daily": "decision_date::text",
}
OWN_SCHEMAS = ("analytics", "knowledge", "recommendations", "portfolio")


@pytest.fixture(scope="session")
def pipeline(databases):
    url = databases.create()
    result = defs.resolve_job_def("all_assets_job").execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={ASSET_PARTITION_RANGE_START_TAG: "2024-05-01", ASSET_PARTITION_RANGE_END_TAG: "2024-05-24"},
        run_config={
            "ops": {
                "analytics__strategy_choices": {
                    "config": {"strategies": ["ma_cross", "rsi_reversion", "bollinger_breakout"]}
                }
            }
        },
        resources={
            "database": PostgresResource(url=url),
            "market_data": MarketDataResource(symbols=SYMBOLS),
            "dbt": dbt_resource(),
            "embedding_model": EmbeddingModelResource(device="cpu"),
        },
    )
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = ANY(%s)", (list(OWN_SCHEMAS),)
        ).fetchall()
        for (table,) in tables:
            ROWS_AFTER_PIPELINE[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table, day in DAY_OF_ROW.items():
            rows = conn.execute(f"SELECT {day}, count(*) FROM {table} GROUP BY 1").fetchall()
            DAILY_ROWS_AFTER_PIPELINE[table] = dict(rows)
    yield url, result
    databases.drop(url)

"""dbt in Dagster: one lineage graph from the raw asset, partition windows passed to dbt, tests as checks."""

from __future__ import annotations

import psycopg
from dagster import AssetKey, DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.definitions import defs
from fks_pipelines.defs.dbt.resources import dbt_resource
from fks_pipelines.defs.shared import MarketDataResource, PostgresResource


def test_dbt_source_is_the_raw_asset_and_groups_follow_layers():
    graph = defs.resolve_asset_graph()
    hourly = graph.get(AssetKey(["marts", "fct_ohlcv_1h"]))
    assert AssetKey(["raw", "binance_klines"]) in hourly.parent_keys
    assert hourly.group_name == "marts"
    assert graph.get(AssetKey(["staging", "stg_binance_klines"])).group_name == "staging"
    assert hourly.partitions_def is not None
    assert graph.get(AssetKey(["marts", "dim_symbols"])).partitions_def is None
    check_names = {key.name for key in graph.asset_check_keys if key.asset_key == hourly.key}
    assert "unique_combination_fct_ohlcv_1h_market__symbol__bucket" in check_names


def test_all_assets_job_over_a_partition_range_builds_the_marts(db_url):
    job = defs.resolve_job_def("all_assets_job")
    result = job.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={ASSET_PARTITION_RANGE_START_TAG: "2024-05-01", ASSET_PARTITION_RANGE_END_TAG: "2024-05-02"},
        resources={
            "database": PostgresResource(url=db_url),
            "market_data": MarketDataResource(symbols=["BTCUSDT", "ETHUSDT"]),
            "dbt": dbt_resource(),
        },
    )
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {
        "raw/binance_klines",
        "marts/fct_ohlcv_1h",
        "marts/fct_ohlcv_1d",
        "marts/fct_returns",
        "marts/dim_symbols",
    } <= materialized
    checks = result.get_asset_check_evaluations()
    assert len(checks) > 20 and all(c.passed for c in checks)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM marts.fct_ohlcv_1h").fetchone() == (2 * 2 * 24,)
        assert conn.execute("SELECT sum(bar_count) FROM marts.fct_ohlcv_1d").fetchone() == (2 * 2 * 1440,)
        assert conn.execute("SELECT count(*) FROM marts.dim_symbols").fetchone() == (2,)

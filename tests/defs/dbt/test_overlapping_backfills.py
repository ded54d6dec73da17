"""First boot without a storm: runs over overlapping date windows (one backfill per new symbol, a gap heal beside
the schedule) never run dbt at the same time on one database, and two overlapping backfills run at once leave
exactly the tables one backfill over their union leaves."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.definitions import defs
from fks_pipelines.defs.dbt.resources import dbt_resource
from fks_pipelines.defs.shared import DBT_POOL, MarketDataResource, PostgresResource
from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.db.locks import DBT_BUILD, advisory_lock, lock_is_held

MARTS = ("marts.fct_ohlcv_1h", "marts.fct_ohlcv_1d", "marts.fct_returns", "marts.dim_symbols")


def marts_job():
    selection = AssetSelection.groups("raw", "staging", "intermediate", "marts")
    merged = Definitions.merge(defs, Definitions(jobs=[define_asset_job("marts_only", selection=selection)]))
    return merged.resolve_job_def("marts_only")


def backfill(url: str, first: str, last: str) -> None:
    """One range run of raw + dbt over [first, last] (what a backfill or a new_symbol_sensor request runs)."""
    result = marts_job().execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        resources={
            "database": PostgresResource(url=url),
            "market_data": MarketDataResource(symbols=["BTCUSDT", "ETHUSDT"]),
            "dbt": dbt_resource(),
        },
    )
    assert result.success


def tables(url: str) -> dict[str, list[str]]:
    with connect(url) as conn:
        return {t: [r[0] for r in conn.execute(f"SELECT t::text FROM {t} t ORDER BY 1")] for t in MARTS}


def test_the_dbt_lock_is_exclusive_and_released(db_url):
    assert not lock_is_held(db_url, DBT_BUILD)
    with advisory_lock(db_url, DBT_BUILD):
        assert lock_is_held(db_url, DBT_BUILD)  # a second run's dbt step would wait here
    assert not lock_is_held(db_url, DBT_BUILD)


def test_every_dbt_step_runs_in_the_dbt_pool():
    job = defs.resolve_job_def("all_assets_job")
    pools = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    assert pools["dbt_daily_models"] == pools["dbt_models"] == DBT_POOL
    assert sum(pool == DBT_POOL for pool in pools.values()) == 2  # nothing else queues behind dbt


@pytest.mark.timeout(1500)
def test_two_overlapping_backfills_at_once_give_the_same_tables_as_one(databases):
    one, two = databases.create(), databases.create()
    try:
        # Separate processes, as two run workers would be; the second database gets both windows at once.
        with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
            single = pool.submit(backfill, one, "2024-05-01", "2024-05-04")
            overlapping = [
                pool.submit(backfill, two, "2024-05-01", "2024-05-03"),
                pool.submit(backfill, two, "2024-05-02", "2024-05-04"),
            ]
            single.result()
            for future in overlapping:
                future.result()
        expected = tables(one)
        assert len(expected["marts.fct_ohlcv_1h"]) == 4 * 2 * 24
        assert tables(two) == expected
    finally:
        databases.drop(one)
        databases.drop(two)

"""dbt in Dagster: one lineage graph from the raw asset, partition windows passed to dbt, tests as checks."""

from __future__ import annotations

import json
import re

import psycopg
from dagster import AssetKey, DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.definitions import defs
from fks_pipelines.defs.dbt.assets import dbt_daily_models, dbt_models
from fks_pipelines.defs.dbt.resources import dbt_project, dbt_resource, manifest_for_database
from fks_pipelines.defs.shared import MarketDataResource, PostgresResource
from fks_pipelines.settings import PROJECT_ROOT


def test_dbt_source_is_the_raw_asset_and_groups_follow_layers():
    graph = defs.resolve_asset_graph()
    hourly = graph.get(AssetKey(["marts", "fct_ohlcv_1h"]))
    assert AssetKey(["raw", "binance_klines"]) in hourly.parent_keys
    assert hourly.group_name == "marts"
    assert graph.get(AssetKey(["staging", "stg_binance_klines"])).group_name == "staging"
    assert hourly.partitions_def is not None
    assert graph.get(AssetKey(["marts", "dim_symbols"])).partitions_def is None
    check_names = {key.name for key in graph.asset_check_keys if key.asset_key == hourly.key}
    assert {"unique_key_fct_ohlcv_1h", "ohlc_sane_fct_ohlcv_1h", "no_bucket_gaps_fct_ohlcv_1h"} <= check_names


def test_only_the_rollups_read_raw_as_the_docs_say():
    """docs/architecture.md (the dbt layer): the rollups read raw directly (the hourly one its 1m and 1h bars, the
    daily one native 1d bars), the rest of the marts go through staging and intermediate or other marts."""
    graph = defs.resolve_asset_graph()
    marts = [node for node in graph.asset_nodes if node.key.path[0] == "marts"]
    reads_raw = {node.key.to_user_string() for node in marts if any(p.path[0] == "raw" for p in node.parent_keys)}
    assert reads_raw == {"marts/fct_ohlcv_1h", "marts/fct_ohlcv_1d"}
    dim_symbols = graph.get(AssetKey(["marts", "dim_symbols"]))
    assert dim_symbols.parent_keys == {AssetKey(["intermediate", "int_symbol_coverage"])}
    assert graph.get(dim_symbols.parent_keys.pop()).parent_keys == {AssetKey(["staging", "stg_binance_klines"])}
    docs = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    assert "Only the rollups, `marts/fct_ohlcv_1h` and `marts/fct_ohlcv_1d` (for native daily bars), have" in docs


def test_every_dbt_check_has_a_description_and_a_readable_name():
    specs = [spec for assets_def in (dbt_daily_models, dbt_models) for spec in assets_def.check_specs]
    assert len(specs) == 22  # every dbt test in the project
    for spec in specs:
        assert spec.description and spec.description.strip(), spec.name
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", spec.name), spec.name  # no trailing or doubled underscores
    names = {spec.name for spec in specs}
    assert {"ohlc_sane_fct_ohlcv_1h", "ohlc_sane_fct_ohlcv_1d"} <= names
    # The description written in the dbt YAML is the one the UI shows.
    hourly_sane = next(spec for spec in specs if spec.name == "ohlc_sane_fct_ohlcv_1h")
    assert hourly_sane.description.startswith("Prices positive")


def test_manifest_for_database_moves_every_relation_and_leaves_the_parsed_manifest_alone():
    manifest = dbt_project().manifest_path.read_text()
    parsed = json.loads(manifest)
    moved = manifest_for_database(parsed, "test_elsewhere")
    hourly = moved["nodes"]["model.fks_pipelines.fct_ohlcv_1h"]
    assert hourly["database"] == "test_elsewhere"
    assert hourly["relation_name"] == '"test_elsewhere"."marts"."fct_ohlcv_1h"'
    assert moved["sources"]["source.fks_pipelines.raw.binance_klines"]["relation_name"] == (
        '"test_elsewhere"."raw"."binance_klines"'
    )
    assert all(n["database"] == "test_elsewhere" for n in moved["nodes"].values() if n.get("database"))
    assert json.loads(manifest) == parsed  # the code location's manifest is not changed


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
    # The test database is not named like the profile's default (fks): row counts and column schemas still come.
    assert db_url.rsplit("/", 1)[-1] != "fks"
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string()
        if key.startswith(("marts/", "intermediate/", "staging/")):
            metadata = event.materialization.metadata
            assert metadata["dagster/column_schema"].value.columns, key
            database = db_url.rsplit("/", 1)[-1]
            assert metadata["dagster/table_name"].value == f"{database}.{key.replace('/', '.')}", key
            if not key.startswith(("staging/", "intermediate/")):  # views: dagster-dbt counts tables only
                assert metadata["dagster/row_count"].value > 0, key
    checks = result.get_asset_check_evaluations()
    assert len(checks) > 20 and all(c.passed for c in checks)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM marts.fct_ohlcv_1h").fetchone() == (2 * 2 * 24,)
        assert conn.execute("SELECT sum(bar_count) FROM marts.fct_ohlcv_1d").fetchone() == (2 * 2 * 1440,)
        assert conn.execute("SELECT count(*) FROM marts.dim_symbols").fetchone() == (2,)

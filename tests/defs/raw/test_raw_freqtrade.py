"""The raw asset with FKS_SOURCE=freqtrade over the bundled real history, materialized through Dagster."""

from __future__ import annotations

import psycopg
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from fks_pipelines.defs.raw.assets import binance_klines
from fks_pipelines.defs.raw.checks import raw_checks
from fks_pipelines.defs.shared import MarketDataResource, PostgresResource


def test_a_real_day_with_an_exchange_gap_materializes_as_the_files_have_it(db_url):
    market = MarketDataResource(source="freqtrade", interval="1h", symbols=["BTCUSDT", "ETHUSDT"])
    result = materialize(
        [binance_klines, *raw_checks],
        partition_key="2020-02-09",
        resources={"database": PostgresResource(url=db_url), "market_data": market},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__binance_klines")
    assert materialization.metadata["dagster/row_count"].value == 46  # 02:00 missing: an exchange gap
    assert materialization.metadata["missing_bars"].value == 2
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # The real exchange gap (02:00 on both symbols) is a known gap: a warning that lists it, not a failure.
    assert {name for name, e in checks.items() if not e.passed} == {"complete_days"}
    complete = checks["complete_days"]
    assert complete.severity == AssetCheckSeverity.WARN
    assert complete.metadata["known_gap_bars_total"].value == 2
    assert "BTCUSDT: 2020-02-09 02:00 .. 2020-02-09 02:00" in complete.metadata["known_gaps"].value
    with psycopg.connect(db_url) as conn:
        held = conn.execute(
            "SELECT symbol, count(*), count(quote_volume) FROM raw.binance_klines GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert held == [("BTCUSDT", 23, 0), ("ETHUSDT", 23, 0)]

"""The raw asset and its checks, materialized through Dagster into the real embedded PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from dagster import AssetSelection, DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from fks_pipelines.defs.raw.assets import binance_klines
from fks_pipelines.defs.raw.checks import raw_checks
from fks_pipelines.defs.shared import MarketDataResource, PostgresResource
from fks_pipelines.lib.db.raw import read_klines
from fks_pipelines.lib.klines import LoadScope

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def resources(db_url: str, **market) -> dict:
    return {
        "database": PostgresResource(url=db_url),
        "market_data": MarketDataResource(symbols=SYMBOLS, **market),
    }


def run(db_url: str, *, partition_key=None, tags=None, run_config=None, instance=None, **market):
    return materialize(
        [binance_klines, *raw_checks],
        partition_key=partition_key,
        tags=tags,
        run_config=run_config,
        resources=resources(db_url, **market),
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def checks_by_name(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_partition_materializes_with_metadata_and_passing_checks(db_url):
    result = run(db_url, partition_key="2024-03-01")
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__binance_klines")
    meta = materialization.metadata
    assert meta["dagster/row_count"].value == 3 * 1440
    assert meta["missing_bars"].value == 0
    assert meta["first_bar"].value == "2024-03-01T00:00:00+00:00"
    assert meta["last_bar"].value == "2024-03-01T23:59:00+00:00"
    assert [c.name for c in meta["preview"].value.schema.columns][:2] == ["market", "symbol"]
    assert meta["dagster/table_name"].value == "raw.binance_klines"
    assert "close_time" in {c.name for c in meta["dagster/column_schema"].value.columns}
    assert {r.data["symbol"]: r.data["rows"] for r in meta["rows_per_symbol"].value.records} == dict.fromkeys(
        SYMBOLS, 1440
    )
    checks = checks_by_name(result)
    assert set(checks) == {spec.name for check in raw_checks for spec in check.check_specs}
    assert all(e.passed for e in checks.values())
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT partition_key, rows_loaded FROM raw.ingest_log").fetchall() == [
            ("2024-03-01", 4320)
        ]


def test_rematerializing_a_partition_gives_the_same_rows(db_url):
    scope = LoadScope(
        "spot",
        "1m",
        tuple(SYMBOLS),
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 3, 2, tzinfo=UTC),
    )
    assert run(db_url, partition_key="2024-03-01").success
    with psycopg.connect(db_url) as conn:
        first = read_klines(conn, scope)
    assert run(db_url, partition_key="2024-03-01").success
    with psycopg.connect(db_url) as conn:
        assert read_klines(conn, scope).equals(first)
        assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone() == (4320,)


def test_partition_range_is_one_run(db_url):
    result = run(
        db_url, tags={ASSET_PARTITION_RANGE_START_TAG: "2024-03-01", ASSET_PARTITION_RANGE_END_TAG: "2024-03-03"}
    )
    assert result.success
    materializations = result.asset_materializations_for_node("raw__binance_klines")
    assert sorted(m.partition for m in materializations) == ["2024-03-01", "2024-03-02", "2024-03-03"]
    # Each partition's metadata describes that day; the run's totals are labelled run_*.
    for m in materializations:
        assert m.metadata["dagster/row_count"].value == 3 * 1440
        assert m.metadata["first_bar"].value == f"{m.partition}T00:00:00+00:00"
        assert m.metadata["last_bar"].value == f"{m.partition}T23:59:00+00:00"
        assert m.metadata["run_rows_loaded"].value == 3 * 3 * 1440 and m.metadata["run_days"].value == 3
    # The checks run once over the three days the run loaded, each with a result (none left planned).
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 6 and all(e.passed and e.partition is None for e in checks)
    assert all(e.metadata["rows_checked"].value == 3 * 3 * 1440 for e in checks)
    assert {e.metadata["first_day"].value for e in checks} == {"2024-03-01"}
    with psycopg.connect(db_url) as conn:
        days = conn.execute("SELECT count(DISTINCT open_time::date) FROM raw.binance_klines").fetchone()[0]
    assert days == 3


def test_run_config_narrows_symbols_and_rejects_unknown_ones(db_url):
    result = run(
        db_url,
        partition_key="2024-03-01",
        run_config={"ops": {"raw__binance_klines": {"config": {"symbols": ["ETHUSDT"]}}}},
    )
    assert result.success
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT DISTINCT symbol FROM raw.binance_klines").fetchall() == [("ETHUSDT",)]
    # The other symbols are missing for that day: the completeness check says so.
    assert not checks_by_name(result)["complete_days"].passed
    bad = run(
        db_url,
        partition_key="2024-03-01",
        run_config={"ops": {"raw__binance_klines": {"config": {"symbols": ["DOGEUSDT"]}}}},
    )
    assert not bad.success


def test_checks_fail_on_planted_bad_data(db_url):
    assert run(db_url, partition_key="2024-03-01").success
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE raw.binance_klines SET high = low - 1"
            " WHERE symbol = 'BTCUSDT' AND open_time = '2024-03-01 10:00+00'"
        )
        conn.execute(
            "UPDATE raw.binance_klines SET volume = -5 WHERE symbol = 'ETHUSDT' AND open_time = '2024-03-01 11:00+00'"
        )
        conn.execute(
            "UPDATE raw.binance_klines SET close_time = close_time + interval '1 minute'"
            " WHERE symbol = 'SOLUSDT' AND open_time = '2024-03-01 12:00+00'"
        )
        conn.execute(
            "UPDATE raw.binance_klines SET close = close * 3, high = close * 3"
            " WHERE symbol = 'SOLUSDT' AND open_time = '2024-03-01 13:00+00'"
        )
        conn.execute(
            "DELETE FROM raw.binance_klines WHERE symbol = 'BTCUSDT'"
            " AND open_time >= '2024-03-01 20:00+00' AND open_time < '2024-03-01 20:05+00'"
        )
    by_name = checks_by_name(run_checks_only(db_url))
    assert not by_name["ohlc_consistent"].passed
    assert not by_name["volumes_non_negative"].passed
    assert not by_name["close_time_consistent"].passed
    assert not by_name["price_jumps"].passed and by_name["price_jumps"].severity.value == "WARN"
    assert not by_name["complete_days"].passed
    assert by_name["complete_days"].metadata["missing_bars"].value == {"BTCUSDT": 5, "ETHUSDT": 0, "SOLUSDT": 0}
    assert "BTCUSDT: 2024-03-01 20:00 .. 2024-03-01 20:04" in by_name["complete_days"].metadata["missing_ranges"].value
    assert by_name["unique_natural_key"].passed


def run_checks_only(db_url: str, instance=None, tags=None):
    """Execute just the checks (no re-materialization), as "Execute all" in the UI does."""
    return materialize(
        [binance_klines, *raw_checks],
        selection=AssetSelection.checks_for_assets(binance_klines),
        # Not partition_key=: Dagster 1.13 validates it against the selected *assets*, of which there are none.
        tags={PARTITION_NAME_TAG: "2024-03-01"} if tags is None else tags,
        resources=resources(db_url),
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_checks_alone_check_the_latest_materialized_days(db_url):
    """ "Execute all" on the checks (no partition in the run): one step, over the latest materialization's days."""
    with DagsterInstance.ephemeral() as instance:
        empty = run_checks_only(db_url, instance=instance, tags={})
        assert empty.success and all(e.passed for e in empty.get_asset_check_evaluations())
        assert run(
            db_url,
            tags={ASSET_PARTITION_RANGE_START_TAG: "2024-03-01", ASSET_PARTITION_RANGE_END_TAG: "2024-03-02"},
            instance=instance,
        ).success
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "DELETE FROM raw.binance_klines WHERE symbol = 'ETHUSDT' AND open_time = '2024-03-02 05:00+00'"
            )
        result = run_checks_only(db_url, instance=instance, tags={})
    assert result.success
    steps = {e.step_key for e in result.all_events if e.step_key}
    assert len(steps) == 1, steps
    by_name = checks_by_name(result)
    assert by_name["complete_days"].metadata["missing_bars"].value == {"BTCUSDT": 0, "ETHUSDT": 1, "SOLUSDT": 0}
    assert by_name["complete_days"].metadata["days_checked"].value == 2
    assert by_name["unique_natural_key"].passed and not by_name["complete_days"].passed


def test_bad_source_fails_the_run_and_keeps_the_previous_rows(db_url):
    assert run(db_url, partition_key="2024-03-01").success
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT count(*), sum(close) FROM raw.binance_klines").fetchone()
    # The sample source produces spot 1m only: asking it for 1h fails before anything is written.
    result = run(db_url, partition_key="2024-03-01", interval="1h")
    assert not result.success
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*), sum(close) FROM raw.binance_klines").fetchone() == before


def failure_message(result) -> str:
    """The step failures' messages, with the errors that caused them."""
    messages = []
    for event in result.all_events:
        error = event.event_specific_data.error if event.is_step_failure else None
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return "\n".join(messages)


def test_a_shorter_reload_fails_the_step_unless_forced(db_url):
    assert run(db_url, partition_key="2024-03-01").success
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT count(*), sum(close) FROM raw.binance_klines").fetchone()
    refused = run(db_url, partition_key="2024-03-01", sample_gap_rate=0.02)
    assert not refused.success
    message = failure_message(refused)
    assert "refused to replace spot 1m 2024-03-01: BTCUSDT: 1440 bars held, " in message
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*), sum(close) FROM raw.binance_klines").fetchone() == before
        status, error = conn.execute("SELECT status, error FROM raw.ingest_log ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "refused" and "bars held" in error
    forced = run(
        db_url,
        partition_key="2024-03-01",
        sample_gap_rate=0.02,
        run_config={"ops": {"raw__binance_klines": {"config": {"force": True}}}},
    )
    assert forced.success
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()[0] < 4320


def load_with_gap(db_url: str, symbols: tuple[str, ...], times: int) -> None:
    """Load 2024-03-01 ``times`` times, each answer short of BTCUSDT's 20:00-20:04 (an exchange outage)."""
    import polars as pl

    from fks_pipelines.lib.db.raw import replace_klines
    from fks_pipelines.lib.sources.sample import sample_klines

    day = datetime(2024, 3, 1, tzinfo=UTC)
    frame = sample_klines(symbols, day.date(), datetime(2024, 3, 2).date())
    frame = frame.filter(
        ~(
            (pl.col("symbol") == "BTCUSDT")
            & (pl.col("open_time").dt.hour() == 20)
            & (pl.col("open_time").dt.minute() < 5)
        )
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(times):
            replace_klines(conn, frame, LoadScope.for_day("spot", "1m", symbols, "2024-03-01"), source="sample")


def test_a_gap_a_refetch_confirmed_is_a_known_gap_and_a_warning(db_url):
    load_with_gap(db_url, ("BTCUSDT", "ETHUSDT"), times=1)
    load_with_gap(db_url, ("SOLUSDT",), times=1)
    first = checks_by_name(run_checks_only(db_url))["complete_days"]
    assert not first.passed and first.severity.value == "ERROR"  # one answer: not yet known
    assert first.metadata["known_gaps"].value == "none"
    load_with_gap(db_url, ("BTCUSDT", "ETHUSDT"), times=1)  # the re-fetch gives the same short day
    known = checks_by_name(run_checks_only(db_url))["complete_days"]
    assert not known.passed and known.severity.value == "WARN"
    assert known.metadata["known_gap_bars_total"].value == 5
    assert known.metadata["known_gaps"].value == "- BTCUSDT 2024-03-01: 1435 of 1440 bars (confirmed by a re-fetch)"
    # A missing bar of a day fetched once is not known: an error again.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM raw.binance_klines WHERE symbol = 'SOLUSDT' AND open_time = '2024-03-01 05:00+00'")
    mixed = checks_by_name(run_checks_only(db_url))["complete_days"]
    assert not mixed.passed and mixed.severity.value == "ERROR"
    assert mixed.metadata["missing_bars"].value == {"BTCUSDT": 5, "ETHUSDT": 0, "SOLUSDT": 1}

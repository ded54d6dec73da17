"""Daily incremental runs and a full refresh give identical marts, also after a day is re-loaded."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from fks_pipelines.lib.db.raw import replace_klines
from fks_pipelines.lib.klines import LoadScope
from fks_pipelines.lib.sources.sample import sample_klines

SYMBOLS = ("BTCUSDT", "ETHUSDT")
START = date(2024, 1, 1)
DAYS = 4
MARTS = ("fct_ohlcv_1h", "fct_ohlcv_1d", "fct_returns")


def load_day(conn, day: date, gap_rate: float = 0.0) -> None:
    frame = sample_klines(SYMBOLS, day, day + timedelta(days=1), gap_rate=gap_rate)
    replace_klines(conn, frame, LoadScope.for_day("spot", "1m", SYMBOLS, day.isoformat()), source="sample")


def snapshot(dbt) -> dict[str, list[tuple]]:
    return {t: dbt.rows(f"SELECT * FROM marts.{t} ORDER BY market, symbol, bucket") for t in MARTS}


@pytest.mark.timeout(900)
def test_daily_runs_equal_full_refresh(dbt, conn):
    days = [START + timedelta(days=i) for i in range(DAYS)]
    for i, day in enumerate(days):
        load_day(conn, day, gap_rate=0.01 if i == 1 else 0.0)
        dbt.build(day.isoformat(), (day + timedelta(days=1)).isoformat(), "--select", "tag:partitioned")
    incremental = snapshot(dbt)
    assert len(incremental["fct_ohlcv_1h"]) == DAYS * 24 * len(SYMBOLS)
    assert len(incremental["fct_ohlcv_1d"]) == DAYS * len(SYMBOLS)

    # Day 2 is re-loaded complete: its partition run must replace exactly that day downstream.
    load_day(conn, days[1])
    dbt.build(days[1].isoformat(), days[2].isoformat(), "--select", "tag:partitioned")
    # Returns look back: day 3 and 4 volatility depends on day 2, so their partitions are re-run as a
    # backfill would (a single invocation over the window).
    dbt.build(days[2].isoformat(), (days[-1] + timedelta(days=1)).isoformat(), "--select", "tag:partitioned")
    incremental = snapshot(dbt)

    dbt.build(None, None, "--select", "tag:partitioned", "--full-refresh")
    full = snapshot(dbt)
    for table in MARTS:
        assert incremental[table] == full[table], table
    bars = dict(dbt.rows("SELECT symbol, sum(bar_count) FROM marts.fct_ohlcv_1d GROUP BY symbol"))
    assert bars == {s: DAYS * 1440 for s in SYMBOLS}


def test_a_partition_run_only_touches_its_window(dbt, conn):
    for i in range(3):
        load_day(conn, START + timedelta(days=i))
    dbt.build(None, None, "--select", "tag:partitioned")
    before = dbt.rows("SELECT bucket, close FROM marts.fct_ohlcv_1h WHERE bucket < '2024-01-02' ORDER BY 1")
    # Remove day 1 from raw and run only day 2's partition: day 1's marts rows stay as they were.
    conn.execute("DELETE FROM raw.binance_klines WHERE open_time < '2024-01-02'")
    dbt.build("2024-01-02", "2024-01-03", "--select", "tag:partitioned")
    assert dbt.rows("SELECT bucket, close FROM marts.fct_ohlcv_1h WHERE bucket < '2024-01-02' ORDER BY 1") == before
    # ...and running day 1's partition now empties it, as the raw layer says.
    dbt.build("2024-01-01", "2024-01-02", "--select", "tag:partitioned")
    assert dbt.rows("SELECT count(*) FROM marts.fct_ohlcv_1h WHERE bucket < '2024-01-02'") == [(0,)]

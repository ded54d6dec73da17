"""dim_symbols stays exact under incremental coverage builds: new days and re-loads of a held day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from fks_pipelines.lib.db.raw import replace_klines
from fks_pipelines.lib.klines import LoadScope
from fks_pipelines.lib.sources.sample import sample_klines

SYMBOLS = ("BTCUSDT", "ETHUSDT")
START = date(2024, 1, 1)
# What the dbt_models asset builds; no lag for in-flight loads, so a build re-reads only the days loaded after the
# previous one (the default lag would re-read everything loaded in the last minutes: all of this test's data).
UNPARTITIONED = ("--exclude", "tag:partitioned", "--vars", '{"fks_coverage_lag": "0 seconds"}')

FROM_RAW = """
    SELECT market, symbol, min(open_time), max(open_time), count(*),
           count(DISTINCT (open_time AT TIME ZONE 'UTC')::date)
    FROM raw.binance_klines WHERE interval = '1m' GROUP BY market, symbol ORDER BY market, symbol
"""
DIM = """
    SELECT market, symbol, first_bar, last_bar, minute_bars, days_with_data
    FROM marts.dim_symbols ORDER BY market, symbol
"""
COVERAGE = "SELECT * FROM intermediate.int_symbol_coverage ORDER BY market, symbol, day"


def load_day(conn, day: date, symbols=SYMBOLS, gap_rate: float = 0.0) -> None:
    frame = sample_klines(symbols, day, day + timedelta(days=1), gap_rate=gap_rate)
    scope = LoadScope.for_day("spot", "1m", symbols, day.isoformat())
    replace_klines(conn, frame, scope, source="sample", force=True)


@pytest.mark.timeout(900)
def test_dim_symbols_equals_an_aggregate_over_raw_after_incremental_loads_and_a_reload(dbt, conn):
    load_day(conn, START)
    load_day(conn, START + timedelta(days=1))
    dbt.build(None, None, *UNPARTITIONED)
    assert dbt.rows(DIM) == dbt.rows(FROM_RAW)
    untouched = dbt.rows(f"SELECT * FROM intermediate.int_symbol_coverage WHERE day = '{START + timedelta(days=1)}'")

    # Second load: a new day (one symbol only, a new symbol too) and a re-load of day 1 with fewer bars.
    load_day(conn, START + timedelta(days=2), symbols=("BTCUSDT", "SOLUSDT"))
    load_day(conn, START, gap_rate=0.05)
    assert dbt.rows(FROM_RAW)[0][4] < 3 * 1440  # the re-load really removed bars
    dbt.build(None, None, *UNPARTITIONED)
    assert dbt.rows(DIM) == dbt.rows(FROM_RAW)
    # The run was incremental: the day nobody re-loaded kept its row as built before.
    assert dbt.rows(f"SELECT * FROM intermediate.int_symbol_coverage WHERE day = '{START + timedelta(days=1)}'") == (
        untouched
    )

    # Re-loading the same day again (idempotent) and a full refresh change nothing.
    load_day(conn, START, gap_rate=0.05)
    dbt.build(None, None, *UNPARTITIONED)
    incremental = dbt.rows(COVERAGE)
    assert dbt.rows(DIM) == dbt.rows(FROM_RAW)
    dbt.build(None, None, "--exclude", "tag:partitioned", "--full-refresh")
    assert dbt.rows(COVERAGE) == incremental
    assert dbt.rows(DIM) == dbt.rows(FROM_RAW)

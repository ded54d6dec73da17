"""The marts from the finest bars held: 1-minute bars where a day has them, else Binance's native 1h, else 1d.

Ground truth (../shared/data/binance/SOURCES.md): Binance's native 1h archives (spot BTCUSDT 2022-09-07/08; USD-M
ETHUSDT 2022-08-24/25, which equal the 1m files' rollup on every field) and Binance's spot 1h/1d bars as freqtrade
downloaded them (open, high, low, close, volume; no quote volume, trades or taker volumes: NULL in raw, as
migration 015 allows; applied here by its ALTER until the freqtrade loader lands). With 1m and native bars held
for the same days, the marts use the 1m bars and still equal the native ones; days with only native bars are
stitched in, one source per day, without a duplicate or an invented bar.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.db.raw import replace_klines
from fks_pipelines.lib.sources.files import read_kline_file
from tests.dbt.test_marts_match_binance import ONE_MINUTE_FILES  # the shared 1m days with native bars
from tests.support import Dbt

NATIVE_1H_FILES = [
    "spot/BTCUSDT-1h-2022-09-07.zip",
    "spot/BTCUSDT-1h-2022-09-08.zip",
    "futures-um/ETHUSDT-1h-2022-08-24.zip",
    "futures-um/ETHUSDT-1h-2022-08-25.zip",
]
NULLABLE = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")
# freqtrade spot bars loaded as native 1h and 1d (symbol, interval, first day, last day inclusive).
FREQTRADE = [
    # Mixed: 1h only on 2019-12-30/31 and 2020-01-04/05, 1m files on 2020-01-01..03; 1d only before 12-30.
    ("BTCUSDT", "1h", datetime(2019, 12, 30, tzinfo=UTC), datetime(2020, 1, 5, tzinfo=UTC)),
    ("BTCUSDT", "1d", datetime(2019, 12, 28, tzinfo=UTC), datetime(2020, 1, 5, tzinfo=UTC)),
    # Binance's maintenance 2018-02-08 00:00 -> 2018-02-09 10:00 (33 missing hours).
    ("BTCUSDT", "1h", datetime(2018, 2, 7, tzinfo=UTC), datetime(2018, 2, 10, tzinfo=UTC)),
    ("BTCUSDT", "1d", datetime(2018, 2, 7, tzinfo=UTC), datetime(2018, 2, 10, tzinfo=UTC)),
    # Both 1m files and native bars on the same days.
    ("ETHUSDT", "1h", datetime(2022, 8, 14, tzinfo=UTC), datetime(2022, 8, 15, tzinfo=UTC)),
    ("ETHUSDT", "1d", datetime(2022, 8, 14, tzinfo=UTC), datetime(2022, 8, 15, tzinfo=UTC)),
    # The days of the native BV 1h files: only the daily bars (the hourly ones come from the BV files).
    ("BTCUSDT", "1d", datetime(2022, 9, 7, tzinfo=UTC), datetime(2022, 9, 8, tzinfo=UTC)),
]
STEP = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
COLUMNS = "bucket, open, high, low, close, volume, quote_volume, trades, taker_buy_base, taker_buy_quote, bar_count"


def freqtrade_bars(shared_data, symbol: str, interval: str, first: datetime, last: datetime) -> dict[datetime, tuple]:
    """open_time -> (open, high, low, close, volume) of freqtrade's file, for open times in [first, last + 1 day)."""
    name = f"{symbol.removesuffix('USDT')}_USDT-{interval}.json"
    bars = {}
    for t, o, h, low, c, v in json.loads((shared_data / "freqtrade" / name).read_text()):
        ts = datetime.fromtimestamp(t / 1000, tz=UTC)
        if first <= ts < last + timedelta(days=1):
            # JSON floats print back as the decimal strings Binance sent (shortest round-trip repr).
            bars[ts] = tuple(Decimal(repr(x)) for x in (o, h, low, c, v))
    return bars


def insert_freqtrade(url: str, shared_data) -> None:
    """freqtrade's bars as raw rows with the columns freqtrade lacks left NULL (what its loader writes)."""
    with psycopg.connect(url) as conn:
        for column in NULLABLE:  # migration 015's change, for a database that does not have it yet
            conn.execute(f"ALTER TABLE raw.binance_klines ALTER COLUMN {column} DROP NOT NULL")
        for symbol, interval, first, last in FREQTRADE:
            bars = freqtrade_bars(shared_data, symbol, interval, first, last)
            assert bars, (symbol, interval, first)
            conn.cursor().executemany(
                "INSERT INTO raw.binance_klines (market, symbol, interval, open_time, close_time, open, high, low,"
                " close, volume, source) VALUES ('spot', %s, %s, %s, %s, %s, %s, %s, %s, %s, 'freqtrade')",
                [
                    (symbol, interval, t, t + STEP[interval] - timedelta(milliseconds=1), *ohlcv)
                    for t, ohlcv in bars.items()
                ],
            )


def load_files(url: str, shared_data, names: list[str]) -> None:
    with connect(url) as conn:
        for name in names:
            parsed = read_kline_file(shared_data / name)
            replace_klines(conn, parsed.frame, parsed.scope, source="file")


@pytest.fixture(scope="module")
def marts(databases, shared_data):
    """One database holding 1m files, native 1h files and freqtrade's 1h/1d bars, the dbt project built once."""
    url = databases.create()
    load_files(url, shared_data, ONE_MINUTE_FILES + NATIVE_1H_FILES)
    insert_freqtrade(url, shared_data)
    dbt = Dbt(url)
    dbt.build()
    yield dbt
    databases.drop(url)


def mart(dbt, table: str, market: str, symbol: str, first: datetime, last: datetime) -> dict[datetime, tuple]:
    """bucket -> (open .. bar_count, bar_source) for buckets in [first, last + 1 day)."""
    rows = dbt.rows(
        f"SELECT {COLUMNS}, bar_source FROM marts.{table} WHERE market = '{market}' AND symbol = '{symbol}'"
        f" AND bucket >= '{first.isoformat()}' AND bucket < '{(last + timedelta(days=1)).isoformat()}' ORDER BY bucket"
    )
    assert len({r[0] for r in rows}) == len(rows), "a bucket appears twice"
    return {r[0]: r[1:] for r in rows}


def test_native_1h_bars_pass_through_and_roll_up_to_binance_daily_bars(marts, shared_data):
    first, last = datetime(2022, 9, 7, tzinfo=UTC), datetime(2022, 9, 8, tzinfo=UTC)
    hourly = mart(marts, "fct_ohlcv_1h", "spot", "BTCUSDT", first, last)
    native = {}
    for name in NATIVE_1H_FILES[:2]:
        for row in read_kline_file(shared_data / name).frame.iter_rows(named=True):
            native[row["open_time"]] = (*(row[c] for c in COLUMNS.split(", ")[1:-1]), 1, "1h")
    assert len(native) == 48
    assert hourly == native  # every field, exactly (Decimal), one source bar each

    daily = mart(marts, "fct_ohlcv_1d", "spot", "BTCUSDT", first, last)
    theirs = freqtrade_bars(shared_data, "BTCUSDT", "1d", first, last)
    assert set(daily) == set(theirs) == {first, last}
    for day, ohlcv in theirs.items():
        assert daily[day][:5] == ohlcv, day  # SOURCES.md check 3: exact on O/H/L/C/V
        assert daily[day][-2:] == (24, "1h")
    # Trades summed from the native hourly bars (SOURCES.md: 5,597,127 and 6,013,826).
    assert [daily[d][6] for d in (first, last)] == [5_597_127, 6_013_826]


def test_one_minute_days_win_over_native_bars_and_agree_with_them(marts, shared_data):
    # SOURCES.md checks 1 and 2: spot 1m against freqtrade's 1h/1d, exactly on O/H/L/C/V.
    for symbol, first, last in (
        ("BTCUSDT", datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 3, tzinfo=UTC)),
        ("ETHUSDT", datetime(2022, 8, 14, tzinfo=UTC), datetime(2022, 8, 15, tzinfo=UTC)),
    ):
        for table, interval, bars in (("fct_ohlcv_1h", "1h", 60), ("fct_ohlcv_1d", "1d", 1440)):
            ours = mart(marts, table, "spot", symbol, first, last)
            theirs = freqtrade_bars(shared_data, symbol, interval, first, last)
            assert set(ours) == set(theirs) and theirs, (symbol, table)
            for bucket, ohlcv in theirs.items():
                assert ours[bucket][:5] == ohlcv, (symbol, table, bucket)
                assert ours[bucket][-2:] == (bars, "1m"), (symbol, table, bucket)
                assert ours[bucket][5] is not None  # the 1m bars carry quote volume: the mart keeps it

    # SOURCES.md check 4: USD-M ETHUSDT 1m against Binance's native 1h, every field; the mart uses the 1m bars.
    first, last = datetime(2022, 8, 24, tzinfo=UTC), datetime(2022, 8, 25, tzinfo=UTC)
    ours = mart(marts, "fct_ohlcv_1h", "usdm", "ETHUSDT", first, last)
    native = {}
    for name in NATIVE_1H_FILES[2:]:
        for row in read_kline_file(shared_data / name).frame.iter_rows(named=True):
            native[row["open_time"]] = (*(row[c] for c in COLUMNS.split(", ")[1:-1]), 60, "1m")
    assert len(native) == 48
    assert ours == native


def test_mixed_days_are_stitched_one_source_per_day(marts, shared_data):
    first, last = datetime(2019, 12, 28, tzinfo=UTC), datetime(2020, 1, 5, tzinfo=UTC)
    minute_days = {datetime(2020, 1, d, tzinfo=UTC) for d in (1, 2, 3)}
    hourly = mart(marts, "fct_ohlcv_1h", "spot", "BTCUSDT", first, last)
    theirs = freqtrade_bars(shared_data, "BTCUSDT", "1h", datetime(2019, 12, 30, tzinfo=UTC), last)
    # Every hour from 2019-12-30 to 2020-01-05 exactly once (no exchange gap in these days), none before.
    assert sorted(hourly) == sorted(theirs) and len(theirs) == 7 * 24
    for bucket, ohlcv in theirs.items():
        day = bucket.replace(hour=0)
        source = "1m" if day in minute_days else "1h"
        assert hourly[bucket][:5] == ohlcv, bucket
        assert hourly[bucket][-2:] == ((60, "1m") if source == "1m" else (1, "1h")), bucket
        # freqtrade has no quote volume, trades or taker volumes: NULL in the mart, not 0.
        assert (hourly[bucket][5:9] == (None,) * 4) == (source == "1h"), bucket

    daily = mart(marts, "fct_ohlcv_1d", "spot", "BTCUSDT", first, last)
    theirs = freqtrade_bars(shared_data, "BTCUSDT", "1d", first, last)
    assert sorted(daily) == sorted(theirs) and len(theirs) == 9
    for day, ohlcv in theirs.items():
        hourly_only = day.day >= 30 or day.year == 2020
        expected = (1440, "1m") if day in minute_days else (24, "1h") if hourly_only else (1, "1d")
        assert daily[day][:5] == ohlcv, day
        assert daily[day][-2:] == expected, day
        assert (daily[day][5] is None) == (expected[1] != "1m"), day

    # Returns run over the stitched days: one per day after the first.
    returns = marts.rows(
        "SELECT bucket, log_return FROM marts.fct_returns WHERE market = 'spot' AND symbol = 'BTCUSDT'"
        f" AND bucket >= '{first.isoformat()}' AND bucket <= '{last.isoformat()}' ORDER BY bucket"
    )
    assert [r[0] for r in returns] == sorted(theirs)
    assert returns[0][1] is None and all(r[1] is not None for r in returns[1:])

    # The coverage says which bars each day is built from.
    coverage = marts.rows(
        "SELECT day, bar_source, bars, minute_bars FROM intermediate.int_symbol_coverage"
        f" WHERE market = 'spot' AND symbol = 'BTCUSDT' AND day BETWEEN '{first.date()}' AND '{last.date()}'"
        " ORDER BY day"
    )
    assert [(str(d), s, b, m) for d, s, b, m in coverage] == [
        (str((first + timedelta(days=i)).date()), *expected)
        for i, expected in enumerate(
            [("1d", 1, 0)] * 2 + [("1h", 24, 0)] * 2 + [("1m", 1440, 1440)] * 3 + [("1h", 24, 0)] * 2
        )
    ]


def test_a_day_inside_an_exchange_gap_keeps_its_short_bars(marts, shared_data):
    first, last = datetime(2018, 2, 7, tzinfo=UTC), datetime(2018, 2, 10, tzinfo=UTC)
    hourly = mart(marts, "fct_ohlcv_1h", "spot", "BTCUSDT", first, last)
    theirs = freqtrade_bars(shared_data, "BTCUSDT", "1h", first, last)
    assert sorted(hourly) == sorted(theirs)  # nothing invented in the 33 missing hours
    assert [b for b in hourly if b.date() == datetime(2018, 2, 8).date()] == [datetime(2018, 2, 8, tzinfo=UTC)]
    daily = mart(marts, "fct_ohlcv_1d", "spot", "BTCUSDT", first, last)
    native = freqtrade_bars(shared_data, "BTCUSDT", "1d", first, last)
    assert sorted(daily) == sorted(native)
    for day, ohlcv in native.items():
        assert daily[day][:5] == ohlcv, day  # the short days equal Binance's own short daily bars
    assert [daily[d][-2] for d in sorted(daily)] == [24, 1, 14, 24]


def test_dim_symbols_counts_days_per_source(marts):
    rows = marts.rows(
        "SELECT market, symbol, minute_bars, days_with_data, days_from_1m, days_from_1h, days_from_1d"
        " FROM marts.dim_symbols ORDER BY market, symbol"
    )
    assert rows == [
        # 3 1m days + 4 1h-only days (12-30, 12-31, 01-04, 01-05) + 4 around the gap + 2 BV 1h days; 1d only: 2.
        ("spot", "BTCUSDT", 3 * 1440, 15, 3, 10, 2),
        ("spot", "ETHUSDT", 2 * 1440, 2, 2, 0, 0),
        ("usdm", "ETHUSDT", 2 * 1440, 2, 2, 0, 0),
    ]


def test_partition_runs_over_mixed_days_equal_the_full_build(marts):
    tables = ("fct_ohlcv_1h", "fct_ohlcv_1d", "fct_returns")
    full = {t: marts.rows(f"SELECT * FROM marts.{t} ORDER BY market, symbol, bucket") for t in tables}
    # One window across 1d-only, 1h-only and 1m days, then single days at each switch of source.
    for window in (("2019-12-28", "2020-01-06"), ("2019-12-31", "2020-01-01"), ("2020-01-01", "2020-01-02")):
        marts.build(*window, "--select", "tag:partitioned")
    assert {t: marts.rows(f"SELECT * FROM marts.{t} ORDER BY market, symbol, bucket") for t in tables} == full


def test_a_bucket_with_any_unknown_volume_sums_to_null_not_a_partial_sum(dbt, db_url):
    """Two 1-minute bars of one hour, one from a source without quote volume, trades or taker volumes."""
    with psycopg.connect(db_url) as conn:
        for column in NULLABLE:
            conn.execute(f"ALTER TABLE raw.binance_klines ALTER COLUMN {column} DROP NOT NULL")
        conn.execute(
            "INSERT INTO raw.binance_klines (market, symbol, interval, open_time, close_time, open, high, low, close,"
            " volume, quote_volume, trades, taker_buy_base, taker_buy_quote, source) VALUES"
            " ('spot', 'BTCUSDT', '1m', '2024-01-01 00:00+00', '2024-01-01 00:00:59.999+00', 10, 11, 9, 10, 1,"
            "  10, 5, 0.5, 5, 'file'),"
            " ('spot', 'BTCUSDT', '1m', '2024-01-01 00:01+00', '2024-01-01 00:01:59.999+00', 10, 12, 10, 11, 2,"
            "  NULL, NULL, NULL, NULL, 'freqtrade')"
        )
    dbt.build(None, None, "--select", "fct_ohlcv_1h fct_ohlcv_1d")
    for table in ("fct_ohlcv_1h", "fct_ohlcv_1d"):
        assert dbt.rows(
            f"SELECT open, high, low, close, volume, quote_volume, trades, taker_buy_base, taker_buy_quote,"
            f" bar_count, bar_source FROM marts.{table}"
        ) == [(10, 12, 9, 11, 3, None, None, None, None, 2, "1m")], table

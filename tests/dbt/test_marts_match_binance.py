"""The marts' 1h and 1d bars, rolled up from real 1-minute bars, equal Binance's own 1h/1d klines.

Ground truth (../shared/data/binance/SOURCES.md): Binance's native 1h archives (USD-M ETHUSDT, every field)
and Binance's spot 1h/1d bars as downloaded by freqtrade (open, high, low, close, volume).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.db.raw import replace_klines
from fks_pipelines.lib.sources.files import read_kline_file
from tests.support import Dbt

ONE_MINUTE_FILES = [
    "spot/BTCUSDT-1m-2020-01-01.zip",
    "spot/BTCUSDT-1m-2020-01-02.zip",
    "spot/BTCUSDT-1m-2020-01-03.zip",
    "spot/ETHUSDT-1m-2022-08-14.zip",
    "spot/ETHUSDT-1m-2022-08-15.zip",
    "futures-um/ETHUSDT-1m-2022-08-24.csv",
    "futures-um/ETHUSDT-1m-2022-08-25.csv",
]
VOLUME_TOLERANCE = Decimal("1e-8")


@pytest.fixture(scope="module")
def marts(databases, shared_data):
    """One database with the real files loaded and the whole dbt project built, shared by this module."""
    url = databases.create()
    with connect(url) as conn:
        for name in ONE_MINUTE_FILES:
            parsed = read_kline_file(shared_data / name)
            replace_klines(conn, parsed.frame, parsed.scope, source="file")
    dbt = Dbt(url)
    dbt.build()
    yield dbt
    databases.drop(url)


def mart(dbt, table: str, market: str, symbol: str) -> dict[datetime, tuple]:
    rows = dbt.rows(
        "SELECT bucket, open, high, low, close, volume, quote_volume, trades, taker_buy_base, taker_buy_quote,"
        " bar_count"
        f" FROM marts.{table} WHERE market = '{market}' AND symbol = '{symbol}' ORDER BY bucket"
    )
    return {r[0]: r[1:] for r in rows}


def freqtrade_bars(shared_data, name: str, start: datetime, end: datetime) -> dict[datetime, tuple]:
    bars = {}
    for t, o, h, low, c, v in json.loads((shared_data / "freqtrade" / name).read_text()):
        ts = datetime.fromtimestamp(t / 1000, tz=UTC)
        if start <= ts < end:
            # JSON floats print back as the decimal strings Binance sent (shortest round-trip repr).
            bars[ts] = tuple(Decimal(repr(x)) for x in (o, h, low, c, v))
    return bars


@pytest.mark.parametrize(
    ("symbol", "start", "end"),
    [
        ("BTCUSDT", datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 4, tzinfo=UTC)),
        ("ETHUSDT", datetime(2022, 8, 14, tzinfo=UTC), datetime(2022, 8, 16, tzinfo=UTC)),
    ],
)
def test_spot_1h_and_1d_equal_binance(marts, shared_data, symbol, start, end):
    pair = symbol.replace("USDT", "_USDT")
    for table, name in (("fct_ohlcv_1h", f"{pair}-1h.json"), ("fct_ohlcv_1d", f"{pair}-1d.json")):
        ours = mart(marts, table, "spot", symbol)
        theirs = freqtrade_bars(shared_data, name, start, end)
        assert set(ours) == set(theirs) and theirs
        for bucket, (o, h, low, c, v) in theirs.items():
            mine = ours[bucket]
            assert mine[:4] == (o, h, low, c), (table, bucket)
            assert abs(mine[4] - v) <= VOLUME_TOLERANCE, (table, bucket)


def test_spot_btc_day_sums_from_sources_md(marts):
    day = mart(marts, "fct_ohlcv_1d", "spot", "BTCUSDT")[datetime(2020, 1, 1, tzinfo=UTC)]
    o, h, low, c, v, qv, trades, tbb, tbq, bars = day
    assert (o, h, low, c) == (Decimal("7195.24"), Decimal("7255.00"), Decimal("7175.15"), Decimal("7200.85"))
    assert (v, qv, trades, tbb, tbq, bars) == (
        Decimal("16792.388165"),
        Decimal("121214452.11606228"),
        194010,
        Decimal("8946.955535"),
        Decimal("64597785.21233434"),
        1440,
    )


def test_usdm_1h_equals_binance_native_1h_on_every_field(marts, shared_data):
    ours = mart(marts, "fct_ohlcv_1h", "usdm", "ETHUSDT")
    native = {}
    for name in ("futures-um/ETHUSDT-1h-2022-08-24.zip", "futures-um/ETHUSDT-1h-2022-08-25.zip"):
        frame = read_kline_file(shared_data / name).frame
        for row in frame.iter_rows(named=True):
            native[row["open_time"]] = row
    assert set(ours) == set(native) and len(native) == 48
    for bucket, row in native.items():
        o, h, low, c, v, qv, trades, tbb, tbq, bars = ours[bucket]
        assert (o, h, low, c, trades, bars) == (row["open"], row["high"], row["low"], row["close"], row["trades"], 60)
        for mine, theirs in (
            (v, row["volume"]),
            (qv, row["quote_volume"]),
            (tbb, row["taker_buy_base"]),
            (tbq, row["taker_buy_quote"]),
        ):
            assert abs(mine - theirs) <= VOLUME_TOLERANCE, bucket


def test_dim_symbols_describes_what_is_held(marts):
    rows = {
        (r[0], r[1]): r[2:]
        for r in marts.rows(
            "SELECT market, symbol, base_asset, quote_asset, minute_bars, days_with_data FROM marts.dim_symbols"
        )
    }
    assert rows == {
        ("spot", "BTCUSDT"): ("BTC", "USDT", 3 * 1440, 3),
        ("spot", "ETHUSDT"): ("ETH", "USDT", 2 * 1440, 2),
        ("usdm", "ETHUSDT"): ("ETH", "USDT", 2 * 1440, 2),
    }

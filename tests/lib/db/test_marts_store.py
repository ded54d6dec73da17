"""Reading the marts: one read cut into days equals a read per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from fks_pipelines.lib.db.marts import bars_between, read_bars
from tests.lib.quant.real_hourly import load_marts


def test_bars_between_one_read_equals_a_read_per_range(conn, shared_data):
    start = datetime(2021, 1, 1, tzinfo=UTC)
    load_marts(conn, shared_data, ["BTCUSDT", "ETHUSDT"], start, start + timedelta(days=20))
    everything = read_bars(conn, "fct_ohlcv_1h", "spot", ["BTCUSDT", "ETHUSDT"], start, start + timedelta(days=20))
    for lo, hi in ((3, 5), (0, 1), (19, 25), (7, 7)):
        a, b = start + timedelta(days=lo, hours=5), start + timedelta(days=hi)
        one = read_bars(conn, "fct_ohlcv_1h", "spot", ["BTCUSDT", "ETHUSDT"], a, b)
        cut = bars_between(everything, a, b)
        for symbol in one:
            assert set(one[symbol]) == set(cut[symbol])
            for column in one[symbol]:
                assert np.array_equal(one[symbol][column], cut[symbol][column]), (lo, hi, symbol, column)
        assert lo == hi or len(cut["BTCUSDT"]["close"]) > 0

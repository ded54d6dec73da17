"""The offline sample generator: deterministic per (symbol, day), continuous, and shaped like real bars."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.klines import validate_klines
from fks_pipelines.lib.sources.sample import (
    EPOCH,
    SAMPLE_SYMBOLS,
    SampleSymbol,
    sample_day,
    sample_klines,
    sample_symbol,
)


def test_same_arguments_same_rows_whatever_the_range():
    alone = sample_day("ETHUSDT", date(2024, 3, 10))
    in_range = sample_klines(["BTCUSDT", "ETHUSDT"], date(2024, 3, 8), date(2024, 3, 12)).filter(
        (pl.col("symbol") == "ETHUSDT") & (pl.col("open_time").dt.date() == date(2024, 3, 10))
    )
    assert alone.equals(in_range)
    assert not alone.equals(sample_day("ETHUSDT", date(2024, 3, 10), seed=43))


def test_bars_pass_the_loader_validation_and_days_join_up():
    frame = sample_klines(["BTCUSDT", "ETHUSDT", "SOLUSDT"], date(2024, 1, 1), date(2024, 1, 8))
    validate_klines(frame, where="sample")
    assert frame.height == 3 * 7 * 1440
    for symbol in ("BTCUSDT", "SOLUSDT"):
        bars = frame.filter(pl.col("symbol") == symbol).sort("open_time")
        # Each bar opens at the previous bar's close, across midnight too.
        assert (bars["open"].slice(1) == bars["close"].slice(0, bars.height - 1)).all()


def test_continuity_across_the_cached_daily_path_boundary():
    day = EPOCH + timedelta(days=512)
    assert sample_day("BTCUSDT", day - timedelta(days=1))["close"][-1] == sample_day("BTCUSDT", day)["open"][0]


def test_volatility_clusters_and_volume_follows_the_us_session():
    frame = sample_klines(["BTCUSDT"], date(2023, 1, 1), date(2023, 4, 1))
    closes = frame["close"].cast(pl.Float64).to_numpy()
    returns = np.diff(np.log(closes))
    abs_r = np.abs(returns - returns.mean())
    # Volatility clustering: absolute returns are positively autocorrelated.
    assert np.corrcoef(abs_r[:-1], abs_r[1:])[0, 1] > 0.1
    # Heavy tails: excess kurtosis of minute returns well above a normal's 0.
    kurtosis = ((returns - returns.mean()) ** 4).mean() / returns.var() ** 2 - 3
    assert kurtosis > 1
    hourly = (
        frame.group_by(pl.col("open_time").dt.hour().alias("h")).agg(pl.col("volume").cast(pl.Float64).sum()).sort("h")
    )
    volume = dict(zip(hourly["h"], hourly["volume"], strict=True))
    assert volume[14] > 1.5 * volume[4]


def test_gaps_are_optional_and_deterministic():
    full = sample_day("BTCUSDT", date(2024, 5, 1))
    gappy = sample_day("BTCUSDT", date(2024, 5, 1), gap_rate=0.02)
    assert full.height == 1440
    assert 1300 < gappy.height < 1440
    assert gappy.equals(sample_day("BTCUSDT", date(2024, 5, 1), gap_rate=0.02))


def test_invalid_symbol_and_day_before_epoch_are_rejected():
    with pytest.raises(BadInputError, match="invalid symbol 'doge usdt'"):
        sample_day("doge usdt", date(2024, 1, 1))
    with pytest.raises(BadInputError, match="starts on 2020-01-01"):
        sample_day("BTCUSDT", date(2019, 12, 31))


def test_known_symbols_keep_their_hand_set_parameters():
    assert sample_symbol("BTCUSDT") == SampleSymbol(7200.0, 0.032, 0.0009, 18.0, 0.01, 1e-5, 0.02)
    assert all(sample_symbol(name) is spec for name, spec in SAMPLE_SYMBOLS.items())


def test_any_symbol_gets_deterministic_realistic_parameters():
    names = [f"S{i:03d}USDT" for i in range(200)]
    specs = [sample_symbol(name) for name in names]
    # From the name alone: the cache cleared, the same parameters come back.
    sample_symbol.cache_clear()
    assert specs == [sample_symbol(name) for name in names]
    assert len({s.start_price for s in specs}) > 150  # symbols differ
    for spec in specs:
        assert 0.001 * 0.5 <= spec.start_price <= 5000 * 1.01
        assert 0.035 <= spec.daily_vol <= 0.09 and 0 <= spec.drift <= 0.0015
        assert 2_000 <= spec.minute_volume * spec.start_price <= 400_000 * 1.01
        assert spec.tick <= spec.start_price / 100 and spec.lot * spec.start_price <= 0.1
    frame = sample_klines(["DOGEUSDT", "S007USDT"], date(2024, 1, 1), date(2024, 1, 3))
    validate_klines(frame, where="sample")
    assert frame.height == 2 * 2 * 1440
    assert frame.equals(sample_klines(["DOGEUSDT", "S007USDT"], date(2024, 1, 1), date(2024, 1, 3)))

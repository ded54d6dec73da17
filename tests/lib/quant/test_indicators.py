"""Indicators against independent references (vectorbt's own implementations, pandas) on real Binance bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from fks_pipelines.lib.quant import indicators as ind
from fks_pipelines.lib.sources.files import read_kline_file

WARMUP = 500  # bars after which differently-seeded recursive averages agree to 1e-9
TOL = 1e-9


@pytest.fixture(scope="module")
def bars(shared_data) -> pl.DataFrame:
    frames = [read_kline_file(shared_data / "spot" / f"BTCUSDT-1m-2020-01-0{d}.zip").frame for d in (1, 2, 3)]
    return pl.concat(frames).with_columns(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close"))


@pytest.fixture(scope="module")
def vbt():
    import vectorbt

    return vectorbt


def close_enough(mine: np.ndarray, reference, start: int = 0) -> None:
    reference = np.asarray(reference, dtype=float)
    assert mine.shape == reference.shape
    np.testing.assert_allclose(mine[start:], reference[start:], rtol=0, atol=TOL)


@pytest.mark.slow  # vectorbt's indicator factory compiles its kernels in every process (seconds each)
def test_sma_and_ema_equal_vectorbt_exactly(bars, vbt):
    close = bars["close"].to_numpy()
    for n in (5, 20, 50):
        close_enough(ind.sma(close, n), vbt.MA.run(close, n).ma.to_numpy())
        close_enough(ind.ema(close, n), vbt.MA.run(close, n, ewm=True).ma.to_numpy())
    assert np.isnan(ind.sma(close, 20)[:19]).all() and not np.isnan(ind.sma(close, 20)[19])


@pytest.mark.slow  # vectorbt's indicator factory compiles its kernels in every process (seconds each)
def test_rsi_is_wilders_and_matches_vectorbt_after_warmup(bars, vbt):
    close = bars["close"].to_numpy()
    mine = ind.rsi(close, 14)
    # vectorbt smooths with span = window (alpha 2/(w+1)); span 27 is Wilder's alpha 1/14, seeded differently.
    close_enough(mine, vbt.RSI.run(close, 27, ewm=True).rsi.to_numpy(), start=WARMUP)
    # And against pandas' ewm with Wilder's alpha.
    delta = pd.Series(close).diff()
    up = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    down = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    close_enough(mine, 100 - 100 / (1 + up / down), start=WARMUP)
    assert np.isnan(mine[:14]).all() and np.nanmin(mine) >= 0 and np.nanmax(mine) <= 100


@pytest.mark.slow  # vectorbt's indicator factory compiles its kernels in every process (seconds each)
def test_macd_matches_vectorbt(bars, vbt):
    close = bars["close"].to_numpy()
    line, signal, hist = ind.macd(close, 12, 26, 9)
    ref = vbt.MACD.run(close, 12, 26, 9, macd_ewm=True, signal_ewm=True)
    close_enough(line, ref.macd.to_numpy())
    close_enough(signal, ref.signal.to_numpy(), start=WARMUP)
    close_enough(hist, ref.hist.to_numpy(), start=WARMUP)


@pytest.mark.slow  # vectorbt's indicator factory compiles its kernels in every process (seconds each)
def test_bollinger_matches_vectorbt(bars, vbt):
    close = bars["close"].to_numpy()
    lower, middle, upper = ind.bollinger(close, 20, 2.0)
    ref = vbt.BBANDS.run(close, 20, alpha=2.0)
    # Rolling sums in floating point: agree to 1e-9 relative at BTC's price level.
    for mine, theirs in ((lower, ref.lower), (middle, ref.middle), (upper, ref.upper)):
        np.testing.assert_allclose(mine[19:], theirs.to_numpy()[19:], rtol=1e-9)


@pytest.mark.slow  # vectorbt's indicator factory compiles its kernels in every process (seconds each)
def test_atr_matches_vectorbt_after_warmup(bars, vbt):
    high, low, close = (bars[c].to_numpy() for c in ("high", "low", "close"))
    mine = ind.atr(high, low, close, 14)
    ref = vbt.ATR.run(high, low, close, 27, ewm=True)
    close_enough(mine, ref.atr.to_numpy(), start=WARMUP)
    close_enough(ind.true_range(high, low, close)[1:], ref.tr.to_numpy()[1:])


def test_indicators_never_look_ahead():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    changed = close.copy()
    changed[400:] *= 1.5  # the future changes...
    for fn in (
        lambda c: ind.rsi(c, 14),
        lambda c: ind.ema(c, 20),
        lambda c: ind.bollinger(c, 20)[0],
        lambda c: ind.macd(c)[1],
    ):
        np.testing.assert_array_equal(fn(close)[:400], fn(changed)[:400])  # ...the past values do not


@pytest.fixture(scope="module")
def long_minute_close(shared_data) -> np.ndarray:
    """Every real BTCUSDT 1-minute bar in ../shared/data/binance (spot 2020, USD-M 2022-2023), oldest first: a
    long history at a high price level, where σ of a short window is tiny relative to the price."""
    files = sorted(shared_data.glob("spot/BTCUSDT-1m-*.zip")) + sorted(shared_data.glob("futures-um/BTCUSDT-1m-*"))
    frames = [read_kline_file(f).frame.select(pl.col("close").cast(pl.Float64)) for f in files]
    return pl.concat(frames)["close"].to_numpy()


def test_bollinger_sigma_is_exact_relative_to_sigma_on_a_long_minute_history(long_minute_close):
    close = long_minute_close
    assert len(close) >= 8_640  # six days of minutes
    for n in (10, 20, 40):
        windows = np.lib.stride_tricks.sliding_window_view(close, n)
        exact = windows.std(axis=1)  # numpy's two-pass std of each window, ddof = 0
        lower, middle, upper = ind.bollinger(close, n, 2.0)
        sigma = (upper - lower)[n - 1 :] / 4.0
        positive = exact > 0
        relative = np.abs(sigma[positive] - exact[positive]) / exact[positive]
        assert relative.max() < 1e-9, (n, relative.max())
        # The running-sum formula this replaces, √(E[x²] − E[x]²), is off by far more on the same bars.
        naive = np.sqrt(np.maximum(ind.sma(close * close, n) - ind.sma(close, n) ** 2, 0.0))[n - 1 :]
        assert (np.abs(naive[positive] - exact[positive]) / exact[positive]).max() > 1e-7
        np.testing.assert_array_equal(np.isnan(lower), np.arange(len(close)) < n - 1)


def _ewm_loop(x: np.ndarray, alpha: float, warmup: int, seed_with_mean: bool) -> np.ndarray:
    """The recursive averages as the plain per-bar Python loop they were before being compiled."""
    out = np.full(x.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid) == 0:
        return out
    start = valid[0]
    if seed_with_mean:
        if len(x) - start < warmup:
            return out
        value, first = x[start : start + warmup].mean(), start + warmup - 1
    else:
        value, first = x[start], start
    out[first] = value
    for i in range(first + 1, len(x)):
        if not np.isnan(x[i]):
            value = value + alpha * (x[i] - value)
        out[i] = value
    if not seed_with_mean:
        out[start : min(start + warmup - 1, len(x))] = np.nan
    return out


def test_compiled_recursive_averages_equal_the_python_loop(bars):
    """EMA and Wilder's average run compiled (look-ahead checks call them thousands of times); they give the
    Python loop's values to the last bit, leading and inner NaNs and too-short inputs included."""
    close = bars["close"].to_numpy().copy()
    gappy = close.copy()
    gappy[:7], gappy[1000] = np.nan, np.nan
    for x in (close, gappy, close[:3]):
        for n in (1, 2, 9, 14, 26, 200):
            assert np.array_equal(ind.ema(x, n), _ewm_loop(x, 2.0 / (n + 1), n, False), equal_nan=True)
            assert np.array_equal(ind.wilder(x, n), _ewm_loop(x, 1.0 / n, n, True), equal_nan=True)
    assert np.isfinite(ind.ema(gappy, 14)[20:]).all()

"""Technical indicators as pure numpy functions (float64 in, float64 out, NaN during warm-up).

Conventions (the ones TA-Lib and most platforms use):
- SMA: arithmetic mean of the last ``n`` values.
- EMA: alpha = 2 / (n + 1), seeded with the first value, reported from the n-th value on (pandas
  ``ewm(span=n, adjust=False)``); leading NaNs are skipped, so an EMA of an EMA (MACD's signal) starts
  where its input starts.
- RSI and ATR use Wilder's smoothing (alpha = 1 / n), seeded with the simple mean of the first ``n`` values.
- Bollinger bands: SMA ± k population standard deviations (ddof = 0), σ computed per window in two passes
  (the window's mean, then the mean squared deviation from it), so it is exact to rounding whatever the length
  of the history (E[x²] − E[x]² from running sums loses (price/σ)² digits).
Every value at bar t uses bars <= t only (no look-ahead).
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _as_float(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def sma(x, n: int) -> np.ndarray:
    x = _as_float(x)
    out = np.full(x.shape, np.nan)
    if n <= 0:
        raise ValueError("window must be positive")
    if len(x) >= n:
        c = np.cumsum(np.insert(x, 0, 0.0))
        out[n - 1 :] = (c[n:] - c[:-n]) / n
    return out


@njit(cache=True)
def _ewm_nb(x: np.ndarray, alpha: float, warmup: int, seed_with_mean: bool, start: int, seed: float) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    n = x.shape[0]
    if start == n:
        return out
    if seed_with_mean:
        if n - start < warmup:
            return out
        value = seed
        first = start + warmup - 1
    else:
        value = x[start]
        first = start
    out[first] = value
    for i in range(first + 1, n):
        if not np.isnan(x[i]):
            value = value + alpha * (x[i] - value)
        out[i] = value
    if not seed_with_mean:
        out[start : min(start + warmup - 1, n)] = np.nan
    return out


def _ewm(x: np.ndarray, alpha: float, warmup: int, seed_with_mean: bool) -> np.ndarray:
    """An exponentially weighted mean from the first non-NaN value on, compiled (a Python loop took ~20 ms
    per 40,000 bars, most of a look-ahead check's time)."""
    x = np.ascontiguousarray(x)
    valid = np.flatnonzero(~np.isnan(x))
    start = int(valid[0]) if len(valid) else len(x)
    # The seed is numpy's mean (pairwise summation, unlike numba's), so the values are the loop's to the last bit.
    seed = float(x[start : start + warmup].mean()) if seed_with_mean and len(x) - start >= warmup else np.nan
    return _ewm_nb(x, float(alpha), int(warmup), bool(seed_with_mean), start, seed)


def ema(x, n: int) -> np.ndarray:
    return _ewm(_as_float(x), 2.0 / (n + 1), n, seed_with_mean=False)


def wilder(x, n: int) -> np.ndarray:
    """Wilder's moving average (RMA): alpha = 1/n, seeded with the mean of the first n values."""
    return _ewm(_as_float(x), 1.0 / n, n, seed_with_mean=True)


def rsi(close, n: int = 14) -> np.ndarray:
    """Relative Strength Index (Wilder), 0..100; the first value is at bar n."""
    close = _as_float(close)
    delta = np.diff(close, prepend=np.nan)
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    gain[0] = loss[0] = np.nan
    avg_gain, avg_loss = wilder(gain, n), wilder(loss, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rs = avg_gain / avg_loss
        out = 100.0 - 100.0 / (1.0 + rs)
    out[(avg_loss == 0) & (avg_gain > 0)] = 100.0
    out[(avg_loss == 0) & (avg_gain == 0)] = 50.0
    return out


def macd(close, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(macd line, signal line, histogram)."""
    line = ema(close, fast) - ema(close, slow)
    sig = ema(line, signal)
    return line, sig, line - sig


@njit(cache=True)
def _rolling_std_nb(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        total = 0.0
        for i in range(t - n + 1, t + 1):
            total += x[i]
        mean = total / n
        squares = 0.0
        for i in range(t - n + 1, t + 1):
            squares += (x[i] - mean) ** 2
        out[t] = np.sqrt(squares / n)
    return out


def rolling_std(x, n: int) -> np.ndarray:
    """Population standard deviation (ddof = 0) of each window of ``n`` values, two-pass per window: exact to
    rounding relative to σ itself, O(len(x) · n) time, no extra memory."""
    if n <= 0:
        raise ValueError("window must be positive")
    return _rolling_std_nb(np.ascontiguousarray(_as_float(x)), int(n))


def bollinger(close, n: int = 20, k: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, middle, upper)."""
    close = _as_float(close)
    middle = sma(close, n)
    std = rolling_std(close, n)
    return middle - k * std, middle, middle + k * std


def true_range(high, low, close, first_bar: str = "high_low") -> np.ndarray:
    """max(high - low, |high - previous close|, |low - previous close|). Bar 0 has no previous close:
    ``first_bar="high_low"`` takes high - low there; ``"talib"`` leaves it NaN (TA-Lib)."""
    high, low, close = _as_float(high), _as_float(low), _as_float(close)
    prev = np.concatenate([[np.nan], close[:-1]])
    ranges = np.stack([high - low, np.abs(high - prev), np.abs(low - prev)])
    tr = np.nanmax(ranges, axis=0)
    if first_bar == "talib":
        tr[:1] = np.nan
    elif first_bar != "high_low":
        raise ValueError(f"first_bar must be 'high_low' or 'talib', not {first_bar!r}")
    return tr


def atr(high, low, close, n: int = 14, first_bar: str = "high_low") -> np.ndarray:
    """Average True Range (Wilder). ``first_bar="talib"``: bar 0's true range undefined, so the average is
    seeded with bars 1..n and starts at bar n, as TA-Lib's (``Conventions.atr_first_bar``)."""
    return wilder(true_range(high, low, close, first_bar), n)

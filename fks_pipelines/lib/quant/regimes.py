"""A Markov model of daily market regimes: trend (up / down / sideways) x volatility (high / low).

Each day is labelled from information up to its close only:
- trend: the ``trend_window``-day log return against ± ``trend_k`` x the rolling daily volatility x sqrt(window);
- volatility: the rolling ``vol_window``-day volatility against the median of all such values so far.
The transition matrix is estimated from the labelled sequence (counts with ``smoothing`` pseudo-counts per
cell, rows normalised), with its stationary distribution; the next-day regime probabilities are the row of
the current regime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

TRENDS = ("up", "down", "sideways")
VOLATILITIES = ("high_vol", "low_vol")
REGIMES = tuple(f"{t}_{v}" for t in TRENDS for v in VOLATILITIES)


@dataclass(frozen=True)
class RegimeConfig:
    trend_window: int = 20
    trend_k: float = 0.5
    vol_window: int = 20
    smoothing: float = 1.0


def label_regimes(close: np.ndarray, config: RegimeConfig = RegimeConfig()) -> np.ndarray:
    """Regime label per day (None while the windows warm up)."""
    close = np.asarray(close, dtype=float)
    r = np.diff(np.log(close), prepend=np.nan)
    n = len(close)
    labels = np.full(n, None, dtype=object)
    vols = np.full(n, np.nan)
    for t in range(n):
        if t >= config.vol_window:
            vols[t] = np.std(r[t - config.vol_window + 1 : t + 1], ddof=1)
    for t in range(n):
        if t < max(config.trend_window, config.vol_window) or np.isnan(vols[t]):
            continue
        move = np.log(close[t] / close[t - config.trend_window])
        band = config.trend_k * vols[t] * np.sqrt(config.trend_window)
        trend = "up" if move > band else "down" if move < -band else "sideways"
        history = vols[: t + 1][~np.isnan(vols[: t + 1])]
        vol = "high_vol" if vols[t] > np.median(history) else "low_vol"
        labels[t] = f"{trend}_{vol}"
    return labels


def transition_matrix(labels, smoothing: float = 1.0) -> np.ndarray:
    """Row-stochastic matrix P[i, j] = P(regime j tomorrow | regime i today), over REGIMES."""
    index = {r: i for i, r in enumerate(REGIMES)}
    counts = np.full((len(REGIMES), len(REGIMES)), float(smoothing))
    for a, b in zip(labels[:-1], labels[1:], strict=True):
        if a is not None and b is not None:
            counts[index[a], index[b]] += 1
    return counts / counts.sum(axis=1, keepdims=True)


def stationary_distribution(matrix: np.ndarray) -> np.ndarray:
    """π with π P = π and sum(π) = 1 (the long-run share of days in each regime)."""
    n = matrix.shape[0]
    system = np.vstack([matrix.T - np.eye(n), np.ones(n)])
    target = np.concatenate([np.zeros(n), [1.0]])
    pi, *_ = np.linalg.lstsq(system, target, rcond=None)
    return pi


def regime_report(days: pl.DataFrame, config: RegimeConfig = RegimeConfig()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """From daily bars (symbol, bucket, close): per-day regimes with next-day probabilities estimated
    point-in-time (transitions observed up to that day), and each symbol's latest transition matrix."""
    day_rows, matrix_rows = [], []
    for (symbol,), group in days.sort("bucket").group_by(["symbol"], maintain_order=True):
        close = group["close"].cast(pl.Float64).to_numpy()
        labels = label_regimes(close, config)
        counts = np.full((len(REGIMES), len(REGIMES)), float(config.smoothing))  # transitions seen so far
        for t, (bucket, label) in enumerate(zip(group["bucket"], labels, strict=True)):
            if label is None:
                continue
            if t > 0 and labels[t - 1] is not None:
                counts[REGIMES.index(labels[t - 1]), REGIMES.index(label)] += 1
            row = counts[REGIMES.index(label)]
            probabilities = row / row.sum()
            day_rows.append(
                {"symbol": symbol, "bucket": bucket, "regime": label}
                | {f"p_next_{r}": float(p) for r, p in zip(REGIMES, probabilities, strict=True)}
            )
        matrix = transition_matrix(labels, config.smoothing)
        pi = stationary_distribution(matrix)
        for i, origin in enumerate(REGIMES):
            matrix_rows.append(
                {"symbol": symbol, "from_regime": origin, "stationary_share": float(pi[i])}
                | {f"to_{r}": float(p) for r, p in zip(REGIMES, matrix[i], strict=True)}
            )
    return pl.DataFrame(day_rows), pl.DataFrame(matrix_rows)

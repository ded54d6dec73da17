"""Vectorised backtests with vectorbt: a strategy's whole parameter grid on one symbol's bars.

Execution model: a signal computed on bar t's close fills at bar t+1's open (``price=open``), all cash in
(long-only spot by default), Binance spot taker fee (0.1%) and slippage on every fill, valued at each close.
The grid runs in chunks of ``chunk_size`` parameter sets so memory stays bounded whatever the grid size;
vectorbt's numba kernels are compiled once and cached on disk.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from fks_pipelines.lib.quant.strategies import Bars, Strategy, chunks, signal_matrix

METRICS = (
    "total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_duration_bars",
    "win_rate", "profit_factor", "expectancy", "trades", "avg_trade_duration_bars", "exposure", "fees_paid",
    "buy_and_hold_return",
)  # fmt: skip


@dataclass(frozen=True)
class BacktestConfig:
    fees: float = 0.001  # Binance spot taker
    slippage: float = 0.0005
    init_cash: float = 10_000.0
    freq: str = "1h"  # bar length, for annualising
    chunk_size: int = 50  # parameter sets per vectorbt call, at most...
    chunk_cells: int = 6_000_000  # ...and at most this many bars x parameter sets (bounds peak memory)
    allow_shorts: bool = False


def next_bar(signals: np.ndarray) -> np.ndarray:
    """Signals moved one bar later: decided on bar t's close, acted on at bar t+1's open."""
    out = np.zeros_like(signals)
    out[1:] = signals[:-1]
    return out


def portfolio(bars: Bars, entries: np.ndarray, exits: np.ndarray, config: BacktestConfig):
    import vectorbt as vbt

    direction = "both" if config.allow_shorts else "longonly"
    return vbt.Portfolio.from_signals(
        close=bars["close"][:, None],  # a column, broadcast against one column per parameter set
        entries=next_bar(entries),
        exits=next_bar(exits),
        price=bars["open"][:, None],
        fees=config.fees,
        slippage=config.slippage,
        init_cash=config.init_cash,
        direction=direction,
        freq=config.freq,
    )


def _values(series_or_scalar) -> np.ndarray:
    return np.atleast_1d(np.asarray(getattr(series_or_scalar, "values", series_or_scalar), dtype=float))


def _max_drawdown_durations(value: np.ndarray) -> np.ndarray:
    """Longest drawdown per column, in bars under water, counted as vectorbt's drawdown records count it:
    from the first bar below the peak to the recovery bar (or through the last bar if still under water)."""
    under = value < np.maximum.accumulate(value, axis=0)
    out = np.zeros(value.shape[1])
    for j in range(value.shape[1]):
        edges = np.diff(np.concatenate([[0], under[:, j].astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if len(starts):
            out[j] = (ends - starts).max()
    return out


def value_and_assets(orders: np.ndarray, close: np.ndarray, init_cash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Portfolio value and units held per bar and column, from vectorbt's order records (buy side 0,
    sell side 1; fees in cash), valued at each close: cash and position change only where orders fill."""
    n, k = len(close), len(init_cash)
    cash_flow = np.zeros((n, k))
    asset_flow = np.zeros((n, k))
    sign = np.where(orders["side"] == 0, 1.0, -1.0)
    np.add.at(asset_flow, (orders["idx"], orders["col"]), sign * orders["size"])
    np.add.at(cash_flow, (orders["idx"], orders["col"]), -sign * orders["size"] * orders["price"] - orders["fees"])
    assets = np.cumsum(asset_flow, axis=0)
    value = init_cash[None, :] + np.cumsum(cash_flow, axis=0) + assets * close[:, None]
    return value, assets


def portfolio_metrics(pf, bars: Bars) -> dict[str, np.ndarray]:
    """The metrics of every column of a vectorbt portfolio, as arrays (one value per parameter set).

    Bar-level metrics are computed here in numpy from the order records (vectorbt's accessors would each
    build and copy bars x columns DataFrames); trade-level ones come from vectorbt's trade records. The
    formulas are vectorbt's own (tests compare them with its accessors).
    """
    trades = pf.trades
    bar_seconds = pf.wrapper.freq.total_seconds()
    ann_factor = 365 * 86400 / bar_seconds
    close = bars["close"]
    n, k = len(close), pf.wrapper.shape_2d[1]
    init = np.broadcast_to(np.asarray(pf.init_cash, dtype=float).reshape(-1), (k,))
    value, assets = value_and_assets(pf.order_records, close, init)
    previous = np.vstack([init[None, :], value[:-1]])
    returns = value / previous - 1.0
    growth = value[-1] / init
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = returns.mean(axis=0)
        sharpe = mean / returns.std(axis=0, ddof=1) * np.sqrt(ann_factor)
        downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2, axis=0))
        sortino = mean / downside * np.sqrt(ann_factor)
        cagr = growth ** (ann_factor / n) - 1.0
        max_drawdown = (value / np.maximum.accumulate(value, axis=0) - 1.0).min(axis=0)
        calmar = np.where(max_drawdown == 0, np.nan, cagr / np.abs(max_drawdown))
    return {
        "total_return": growth - 1.0,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "max_drawdown": max_drawdown,
        "max_drawdown_duration_bars": _max_drawdown_durations(value),
        "win_rate": _values(trades.win_rate()),
        "profit_factor": _values(trades.profit_factor()),
        "expectancy": _values(trades.expectancy()),
        "trades": _values(trades.count()),
        "avg_trade_duration_bars": _values(trades.duration.mean()),  # vectorbt counts durations in bars
        "exposure": (assets != 0).mean(axis=0),
        "fees_paid": _values(pf.orders.fees.sum()),
        "buy_and_hold_return": np.full(k, close[-1] / close[0] - 1.0),
    }


def effective_chunk_size(n_bars: int, config: BacktestConfig) -> int:
    """Memory grows with bars x parameter sets per vectorbt call (it keeps ~20 such float arrays alive):
    long histories get narrower chunks, so the peak stays about the same whatever the history length."""
    return max(1, min(config.chunk_size, config.chunk_cells // max(1, n_bars)))


def run_sweep(
    bars: Bars,
    strategy: Strategy,
    parameter_sets: list[dict],
    config: BacktestConfig = BacktestConfig(),
    on_chunk: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """One row per parameter set: the parameters (as a JSON-able dict column) and every metric."""
    rows: dict[str, list] = {"strategy": [], "params": [], **{m: [] for m in METRICS}}
    done = 0
    for number, chunk in enumerate(chunks(parameter_sets, effective_chunk_size(len(bars["close"]), config)), start=1):
        entries, exits = signal_matrix(strategy, bars, chunk)
        pf = portfolio(bars, entries, exits, config)
        metrics = portfolio_metrics(pf, bars)
        rows["strategy"] += [strategy.name] * len(chunk)
        rows["params"] += chunk
        for name in METRICS:
            rows[name] += [float(v) for v in metrics[name]]
        done += len(chunk)
        # vectorbt's cached properties form reference cycles: collect them every few chunks, or every chunk's
        # arrays stay alive until the cyclic collector happens to run (several GB over a long sweep).
        del pf, entries, exits, metrics
        if number % 4 == 0:
            gc.collect()
        if on_chunk:
            on_chunk(done, len(parameter_sets))
    frame = pl.DataFrame({k: v for k, v in rows.items() if k != "params"})
    return frame.with_columns(pl.Series("params", [dict(p) for p in rows["params"]], dtype=pl.Object)).select(
        "strategy", "params", *METRICS
    )


OBJECTIVES: dict[str, Callable[[pl.DataFrame], pl.Series]] = {
    "sharpe": lambda f: f["sharpe"],
    "sortino": lambda f: f["sortino"],
    "calmar": lambda f: f["calmar"],
    "return_over_drawdown": lambda f: f["total_return"] / f["max_drawdown"].abs().clip(lower_bound=1e-9),
}


def best(results: pl.DataFrame, objective: str, min_trades: int = 1) -> dict:
    """The row (as a dict) that maximises ``objective`` among rows with at least ``min_trades`` trades;
    ties go to the earliest parameter set, so the choice is deterministic."""
    score = OBJECTIVES[objective](results).fill_nan(None).fill_null(float("-inf"))
    eligible = results["trades"] >= min_trades
    score = pl.Series(np.where(eligible.to_numpy(), score.to_numpy(), -np.inf))
    index = int(np.argmax(score.to_numpy()))
    return results.row(index, named=True) | {"objective": objective, "score": float(score[index])}

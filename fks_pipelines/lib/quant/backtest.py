"""Vectorised backtests with vectorbt: a strategy's whole parameter grid on one symbol's bars.

Execution model: a signal computed on bar t's close fills at bar t+1's open (``price=open``), all cash in
(long-only spot by default), Binance spot taker fee (0.1%) and slippage on every fill, valued at each close.
The grid runs in chunks of ``chunk_size`` parameter sets so memory stays bounded whatever the grid size;
vectorbt's numba kernels are compiled once and cached on disk. With ``workers`` > 1 the chunks run in forked
worker processes (each holds one chunk and its own bounded indicator cache at a time); every chunk is computed
exactly as in the serial run, so the results are identical.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl
from numba import njit

from fks_pipelines.lib.quant.strategies import Bars, Strategy, SweepBars, chunks, signal_matrix

METRICS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_bars",
    "win_rate",
    "profit_factor",
    "expectancy",
    "trades",
    "avg_trade_duration_bars",
    "exposure",
    "fees_paid",
    "buy_and_hold_return",
)


@dataclass(frozen=True)
class BacktestConfig:
    fees: float = 0.001  # Binance spot taker
    slippage: float = 0.0005
    init_cash: float = 10_000.0
    freq: str = "1h"  # bar length, for annualising
    chunk_size: int = 50  # parameter sets per vectorbt call, at most...
    chunk_cells: int = 6_000_000  # ...and at most this many bars x parameter sets (bounds peak memory)
    allow_shorts: bool = False
    workers: int = 1  # processes a sweep's chunks run on (1: serial; 0: one per CPU core)...
    days_per_year: float = 365.0  # annualisation: crypto trades every day; 252 is the equities convention
    parallel_cells: int = 2_000_000  # ...when it has at least this many bars x parameter sets (forking costs ~0.1 s)


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


@njit(cache=True)
def _bar_metrics_nb(idx, col, side, size, price, fees, col_start, close, init_cash):
    """Per column, one pass over the bars: replay the column's orders (sorted by bar) into cash and units,
    value the book at each close, and reduce on the fly. Returns (final value, mean return, std of returns
    (ddof 1), downside deviation, max drawdown, longest drawdown in bars, bars exposed). The value series is
    computed exactly as ``init + cumsum(cash flows) + units * close``, vectorbt's own definition."""
    n, k = close.shape[0], init_cash.shape[0]
    out = np.empty((7, k))
    returns = np.empty(n)
    for j in range(k):
        o, end = col_start[j], col_start[j + 1]
        cash_flows, units, previous = 0.0, 0.0, init_cash[j]
        peak, max_dd, run, longest, exposed, total, down = -np.inf, 0.0, 0, 0, 0, 0.0, 0.0
        value = init_cash[j]
        for t in range(n):
            unit_flow, cash_flow = 0.0, 0.0
            while o < end and idx[o] == t:
                sign = 1.0 if side[o] == 0 else -1.0
                unit_flow += sign * size[o]
                cash_flow += -sign * size[o] * price[o] - fees[o]
                o += 1
            units += unit_flow
            cash_flows += cash_flow
            value = init_cash[j] + cash_flows + units * close[t]
            r = value / previous - 1.0
            returns[t] = r
            total += r
            if r < 0.0:
                down += r * r
            previous = value
            if value > peak:
                peak = value
            dd = value / peak - 1.0
            if dd < max_dd:
                max_dd = dd
            if value < peak:
                run += 1
                if run > longest:
                    longest = run
            else:
                run = 0
            if units != 0.0:
                exposed += 1
        mean = total / n
        squares = 0.0
        for t in range(n):
            squares += (returns[t] - mean) ** 2
        out[0, j] = value
        out[1, j] = mean
        out[2, j] = np.sqrt(squares / (n - 1)) if n > 1 else np.nan
        out[3, j] = np.sqrt(down / n)
        out[4, j] = max_dd
        out[5, j] = longest
        out[6, j] = exposed
    return out


def _trade_metrics(trades: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """vectorbt's trade statistics (``pf.trades``: exit trades, open ones included) from its records, per
    column: counts and sums by ``np.bincount`` instead of one mapped array per statistic."""
    col, pnl = trades["col"], trades["pnl"]
    duration = trades["exit_idx"] - trades["entry_idx"] + (trades["status"] == 0)  # an open trade counts its last bar

    def per_col(weights=None, mask=None):
        c, w = (col, weights) if mask is None else (col[mask], None if weights is None else weights[mask])
        return np.bincount(c, weights=w, minlength=k).astype(float)

    count, wins, breakeven = per_col(), per_col(mask=pnl > 0), per_col(mask=pnl == 0)
    losses = per_col(mask=pnl < 0)
    won, lost = per_col(pnl, pnl > 0), per_col(pnl, pnl < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = wins / count
        avg_win = np.where(wins > 0, won / wins, 0.0)
        avg_loss = np.where(losses > 0, lost / losses, 0.0)
        loss_rate = (count - wins - breakeven) / count
        has = count > 0
        return {
            "win_rate": win_rate,
            "profit_factor": np.where(has, won / np.abs(lost), np.nan),
            "expectancy": np.where(has, win_rate * avg_win - loss_rate * np.abs(avg_loss), np.nan),
            "trades": count,
            "avg_trade_duration_bars": np.where(has, per_col(duration.astype(float)) / count, np.nan),
        }


def portfolio_metrics(pf, bars: Bars, days_per_year: float = 365.0) -> dict[str, np.ndarray]:
    """The metrics of every column of a vectorbt portfolio, as arrays (one value per parameter set).

    Computed from vectorbt's order and trade records in one numba pass per column (vectorbt's accessors
    would each build and copy bars x columns DataFrames); the formulas are vectorbt's own, and the tests
    compare every metric with its accessors.
    """
    ann_factor = days_per_year * 86400 / pf.wrapper.freq.total_seconds()
    close = np.ascontiguousarray(bars["close"], dtype=float)
    n, k = len(close), pf.wrapper.shape_2d[1]
    init = np.ascontiguousarray(np.broadcast_to(np.asarray(pf.init_cash, dtype=float).reshape(-1), (k,)))
    orders = pf.order_records
    orders = orders[np.lexsort((orders["idx"], orders["col"]))]
    col_start = np.searchsorted(orders["col"], np.arange(k + 1))
    final, mean, std, downside, max_drawdown, longest, exposed = _bar_metrics_nb(
        orders["idx"],
        orders["col"],
        orders["side"],
        orders["size"],
        orders["price"],
        orders["fees"],
        col_start,
        close,
        init,
    )
    growth = final / init
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = mean / std * np.sqrt(ann_factor)
        sortino = mean / downside * np.sqrt(ann_factor)
        cagr = growth ** (ann_factor / n) - 1.0
        calmar = np.where(max_drawdown == 0, np.nan, cagr / np.abs(max_drawdown))
    return {
        "total_return": growth - 1.0,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "max_drawdown": max_drawdown,
        "max_drawdown_duration_bars": longest,
        **_trade_metrics(pf.trades.values, k),
        "exposure": exposed / n,
        "fees_paid": np.bincount(orders["col"], weights=orders["fees"], minlength=k),
        "buy_and_hold_return": np.full(k, close[-1] / close[0] - 1.0),
    }


def effective_chunk_size(n_bars: int, config: BacktestConfig) -> int:
    """Memory grows with bars x parameter sets per vectorbt call (it keeps ~20 such float arrays alive):
    long histories get narrower chunks, so the peak stays about the same whatever the history length."""
    return max(1, min(config.chunk_size, config.chunk_cells // max(1, n_bars)))


def _chunk_metrics(bars: SweepBars, strategy: Strategy, chunk: list[dict], config: BacktestConfig) -> dict:
    entries, exits = signal_matrix(strategy, bars, chunk)
    pf = portfolio(bars, entries, exits, config)
    metrics = portfolio_metrics(pf, bars, config.days_per_year)
    # vectorbt's cached properties form reference cycles: collect them after every chunk, or every chunk's
    # arrays stay alive until the cyclic collector happens to run (several GB over a long sweep). The
    # chunk's objects are young, so a generation-1 collection finds them without walking the whole heap.
    del pf, entries, exits
    gc.collect(1)
    return {name: np.asarray(metrics[name], dtype=float) for name in METRICS}


# The sweep a forked worker runs: set before the pool forks, so bars and strategy (a user strategy's
# closure included) reach the workers by fork, never pickled; each worker builds its own indicator cache.
_FORKED: tuple | None = None


def _forked_chunk(chunk: list[dict]) -> dict:
    assert _FORKED is not None, "run_sweep sets the sweep before forking"
    bars, strategy, config, max_cells = _FORKED
    if not isinstance(bars, SweepBars) or bars.memo.get(("__pid__",)) != os.getpid():
        bars = SweepBars(dict(bars), max_cells=max_cells)
        bars.memo[("__pid__",)] = os.getpid()
        globals()["_FORKED"] = (bars, strategy, config, max_cells)
    return _chunk_metrics(bars, strategy, chunk, config)


def sweep_workers(config: BacktestConfig, n_chunks: int, cells: int | None = None) -> int:
    """Processes for ``n_chunks`` chunks of ``cells`` bars x parameter sets in all: ``config.workers`` (0: the
    CPU cores this process may use), never more than there are chunks; 1 for a sweep too small to repay forking."""
    if cells is not None and cells < config.parallel_cells:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(config.workers or cores, n_chunks))


def run_sweep(
    bars: Bars,
    strategy: Strategy,
    parameter_sets: list[dict],
    config: BacktestConfig = BacktestConfig(),
    on_chunk: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """One row per parameter set: the parameters (as a JSON-able dict column) and every metric."""
    rows: dict[str, list] = {m: [] for m in METRICS}
    parts = list(chunks(parameter_sets, effective_chunk_size(len(bars["close"]), config)))
    workers = sweep_workers(config, len(parts), len(bars["close"]) * len(parameter_sets))
    done = 0

    def collect(chunk: list[dict], metrics: dict) -> None:
        nonlocal done
        for name in METRICS:
            rows[name] += [float(v) for v in metrics[name]]
        done += len(chunk)
        if on_chunk:
            on_chunk(done, len(parameter_sets))

    if workers == 1:
        sweep_bars = SweepBars(bars)  # each indicator once per sweep, not once per parameter set
        for chunk in parts:
            collect(chunk, _chunk_metrics(sweep_bars, strategy, chunk, config))
    else:
        global _FORKED
        # Each worker's indicator cache gets its share of the serial bound, so the sweep's total stays the same.
        _FORKED = (bars, strategy, config, 40_000_000 // workers)
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                for chunk, metrics in zip(parts, pool.map(_forked_chunk, parts), strict=True):  # in order
                    collect(chunk, metrics)
        finally:
            _FORKED = None
    frame = pl.DataFrame({"strategy": [strategy.name] * len(parameter_sets), **rows})
    return frame.with_columns(pl.Series("params", [dict(p) for p in parameter_sets], dtype=pl.Object)).select(
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

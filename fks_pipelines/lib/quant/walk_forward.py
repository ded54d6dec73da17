"""Walk-forward validation: choose parameters in-sample, judge them out-of-sample, window after window.

For each window, the whole grid runs on the in-sample bars [is_start, decision); the parameter set that
maximises the objective is chosen using those bars only; it is then backtested on the out-of-sample bars
[decision, oos_end), with the strategy's warm-up taken from bars before ``decision`` (indicators need
history) but no trade before it. Nothing at or after the decision bar influences the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from fks_pipelines.lib.quant.backtest import (
    BacktestConfig,
    SweepPool,
    best,
    effective_chunk_size,
    portfolio,
    portfolio_metrics,
    run_sweep,
    stop_columns,
    sweep_workers,
)
from fks_pipelines.lib.quant.optimize import optimize_with_optuna
from fks_pipelines.lib.quant.strategies import Bars, Strategy, chunks


@dataclass(frozen=True)
class Search:
    """How a window's in-sample parameters are found: the whole grid, or Optuna (seeded TPE over the same
    grid values) for spaces too large to sweep."""

    method: str = "grid"  # "grid" | "optuna"
    trials: int = 50
    seed: int = 42

    def __post_init__(self):
        if self.method not in ("grid", "optuna"):
            raise ValueError(f"search method must be 'grid' or 'optuna', not {self.method!r}")
        if self.trials < 1:
            raise ValueError("optuna needs at least one trial")


@dataclass(frozen=True)
class Window:
    in_sample_start: int
    decision: int  # first out-of-sample bar
    out_of_sample_end: int


def walk_forward_windows(n_bars: int, in_sample: int, out_of_sample: int, step: int | None = None) -> list[Window]:
    """Rolling windows: in-sample of ``in_sample`` bars, then ``out_of_sample`` bars, advancing by ``step``
    (default: the out-of-sample length, so out-of-sample periods tile without overlap)."""
    if in_sample <= 0 or out_of_sample <= 0:
        raise ValueError("window lengths must be positive")
    step = step or out_of_sample
    windows, start = [], 0
    while start + in_sample + out_of_sample <= n_bars:
        windows.append(Window(start, start + in_sample, start + in_sample + out_of_sample))
        start += step
    return windows


def _slice(bars: Bars, start: int, end: int) -> dict[str, np.ndarray]:
    return {k: v[start:end] for k, v in bars.items()}


def choose_parameters(
    bars: Bars,
    strategy: Strategy,
    parameter_sets: list[dict],
    window: Window,
    objective: str,
    config: BacktestConfig,
    search: Search = Search(),
    pool: SweepPool | None = None,
) -> dict:
    """The in-sample winner for ``window``: reads bars before ``window.decision`` only. Optuna searches the
    strategy's grid values (``parameter_sets`` is the grid search's list). ``pool``: workers forked over
    ``bars`` (under the key ``""``) that run the grid search's chunks."""
    in_sample = _slice(bars, window.in_sample_start, window.decision)
    if search.method == "optuna":
        winner, _ = optimize_with_optuna(
            in_sample, strategy, objective=objective, n_trials=search.trials, seed=search.seed, config=config
        )
        return winner
    if pool is not None:
        return best(pool.sweep("", window.in_sample_start, window.decision, parameter_sets), objective)
    return best(run_sweep(in_sample, strategy, parameter_sets, config), objective)


def out_of_sample_metrics(bars: Bars, strategy: Strategy, params: dict, window: Window, config: BacktestConfig) -> dict:
    """Metrics of ``params`` traded on [decision, end), indicators warmed up on the bars before."""
    warm_start = max(0, window.decision - strategy.warmup(params))
    span = _slice(bars, warm_start, window.out_of_sample_end)
    entries, exits = strategy.signals(span, **params)
    offset = window.decision - warm_start
    trade = _slice(span, offset, len(span["close"]))
    pf = portfolio(trade, entries[offset:, None], exits[offset:, None], config, stop_columns(strategy, [params]))
    metrics = {
        k: float(v[0]) for k, v in portfolio_metrics(pf, trade, config.days_per_year, config.conventions).items()
    }
    return metrics | {"equity": np.asarray(pf.value())[:, 0]}


def walk_forward(
    bars: Bars,
    strategy: Strategy,
    parameter_sets: list[dict],
    *,
    in_sample: int,
    out_of_sample: int,
    objective: str = "sharpe",
    config: BacktestConfig = BacktestConfig(),
    search: Search = Search(),
) -> tuple[pl.DataFrame, np.ndarray]:
    """One row per window (chosen parameters, in-sample score, out-of-sample metrics) and the chained
    out-of-sample equity curve (each window starts from the previous window's final equity). With
    ``config.workers`` != 1, one pool of workers, forked once, runs every window's grid search."""
    windows = walk_forward_windows(len(bars["close"]), in_sample, out_of_sample)
    n_chunks = len(list(chunks(parameter_sets, effective_chunk_size(in_sample, config))))
    cells = in_sample * len(parameter_sets) * len(windows)
    workers = sweep_workers(config, n_chunks, cells) if search.method == "grid" else 1
    with SweepPool({"": bars}, strategy, config, workers) as pool:
        return _walk_forward(bars, strategy, parameter_sets, windows, objective, config, search, pool)


def _walk_forward(
    bars: Bars,
    strategy: Strategy,
    parameter_sets: list[dict],
    windows: list[Window],
    objective: str,
    config: BacktestConfig,
    search: Search,
    pool: SweepPool,
) -> tuple[pl.DataFrame, np.ndarray]:
    rows, curve = [], []
    capital = config.init_cash
    for i, window in enumerate(windows):
        chosen = choose_parameters(bars, strategy, parameter_sets, window, objective, config, search, pool)
        oos = out_of_sample_metrics(bars, strategy, chosen["params"], window, config)
        equity = oos.pop("equity")
        curve.append(equity / equity[0] * capital)
        capital = curve[-1][-1]
        rows.append(
            {
                "window": i,
                "in_sample_start": window.in_sample_start,
                "decision": window.decision,
                "out_of_sample_end": window.out_of_sample_end,
                "strategy": strategy.name,
                "params": chosen["params"],
                "objective": objective,
                "in_sample_score": chosen["score"],
                **{f"oos_{k}": v for k, v in oos.items()},
            }
        )
    frame = pl.DataFrame([{k: v for k, v in r.items() if k != "params"} for r in rows])
    if rows:
        frame = frame.with_columns(pl.Series("params", [r["params"] for r in rows], dtype=pl.Object))
    return frame, (np.concatenate(curve) if curve else np.array([]))

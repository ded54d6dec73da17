"""The strategy to trade, re-decided on a rolling schedule with three windows kept apart.

At each decision time T (every ``every`` from a calendar anchor), with the bars before T only:

1. **in-sample** [T - validation - in_sample, T - validation): each strategy's parameters are chosen by the
   objective (walk_forward.choose_parameters: the grid or Optuna);
2. **validation** [T - validation, T): each strategy trades its in-sample parameters (indicators warmed up on
   earlier bars); the one with the best objective is the candidate. It is chosen only if it beats cash after
   fees with enough confidence: a positive validation return and a Deflated Sharpe Ratio of at least
   ``min_dsr``, deflated for the number of strategies compared on the validation window. Otherwise the choice is
   ``cash`` (params ``{}``).
3. **test** [T, T + test): the choice is reported on bars neither choice saw (cash earns 0). These metrics
   become known only at T + test; they are a report, never an input of this or any later decision's choice.

Each decision also carries the PBO (CSCV) of "pick the configuration with the best Sharpe ratio" over every
configuration of every strategy on [T - validation - in_sample, T): how often that selection overfits there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from fks_pipelines.lib.quant.backtest import OBJECTIVES, BacktestConfig, portfolio, stop_columns
from fks_pipelines.lib.quant.overfitting import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_ratio,
)
from fks_pipelines.lib.quant.strategies import Bars, Strategy, SweepBars
from fks_pipelines.lib.quant.walk_forward import Search, Window, choose_parameters, out_of_sample_metrics

CASH = "cash"
# Decision times are anchor + k * every: with every = 7 days, each Monday 00:00 UTC.
ANCHOR = datetime(1970, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Windows:
    """Window lengths in bars (hourly bars: days * 24)."""

    in_sample: int
    validation: int
    test: int
    pbo_blocks: int = 8

    def __post_init__(self):
        if min(self.in_sample, self.validation, self.test) <= 0:
            raise ValueError("in-sample, validation and test windows must be positive")


@dataclass(frozen=True)
class Decision:
    decision_index: int  # first bar at or after decided_at: every bar the choice used is before it
    strategy: str  # a strategy name, or "cash"
    params: dict
    candidate: str  # the best strategy on the validation window (the choice unless it is cash)
    validation: dict[str, float]  # the candidate's validation metrics (total_return, sharpe, ...)
    n_trials: int  # strategies compared on the validation window
    dsr: float
    pbo: float
    configurations: int  # configurations in the PBO's selection
    candidates: list[dict] = field(default_factory=list)  # per strategy: params, in-sample score, validation


def decision_indices(times: np.ndarray, every: timedelta, end: datetime, history: int) -> list[tuple[datetime, int]]:
    """(decided_at, index of the first bar at or after it) for every anchored decision time in the bars' span
    up to ``end`` (the end of the last bar) that has ``history`` bars before it."""
    stamps = times.astype("datetime64[us]")
    first = stamps[0].item().replace(tzinfo=UTC)
    k = -((ANCHOR - first) // every)  # the first anchored time at or after the first bar
    out = []
    at = ANCHOR + k * every
    while at <= end:
        index = int(np.searchsorted(stamps, np.datetime64(at.replace(tzinfo=None), "us")))
        if index >= history:
            out.append((at, index))
        at += every
    return out


def _slice(bars: Bars, start: int, end: int) -> dict[str, np.ndarray]:
    return {k: v[start:end] for k, v in bars.items()}


def _returns(equity: np.ndarray, init_cash: float) -> np.ndarray:
    values = np.concatenate([[init_cash], np.asarray(equity, dtype=float)])
    return np.diff(values) / values[:-1]


def _score(metrics: dict[str, float], objective: str) -> float:
    value = OBJECTIVES[objective](pl.DataFrame({k: [v] for k, v in metrics.items()}))[0]
    return float(value) if value is not None and np.isfinite(value) else float("-inf")


def configuration_returns(bars: Bars, strategies: list[Strategy], start: int, config: BacktestConfig) -> np.ndarray:
    """Per-bar returns (bars x configurations) of every parameter set of every strategy trading on
    [start, len(bars)), indicators computed on all of ``bars`` (so warmed up on the bars before ``start``)."""
    columns = []
    trade = _slice(bars, start, len(bars["close"]))
    for strategy in strategies:
        sets = strategy.parameter_sets()
        swept = SweepBars(bars)  # each indicator (and a file strategy's frame) once per strategy, not per set
        pairs = [strategy.signals(swept, **p) for p in sets]
        entries = np.column_stack([e[start:] for e, _ in pairs])
        exits = np.column_stack([x[start:] for _, x in pairs])
        stops = stop_columns(strategy, sets)
        values = np.asarray(portfolio(trade, entries, exits, config, stops).value(), dtype=float).reshape(
            len(trade["close"]), -1
        )
        previous = np.vstack([np.full((1, values.shape[1]), config.init_cash), values[:-1]])
        columns.append(values / previous - 1)
    return np.hstack(columns)


def decide(
    bars: Bars,
    strategies: list[Strategy],
    windows: Windows,
    *,
    objective: str,
    min_dsr: float,
    config: BacktestConfig = BacktestConfig(),
    search: Search = Search(),
) -> Decision:
    """The choice at the end of ``bars``: every bar passed is before the decision time (the caller slices), so
    nothing later can reach it."""
    n = len(bars["close"])
    start, validation_start = n - windows.validation - windows.in_sample, n - windows.validation
    if start < 0:
        raise ValueError(f"{n} bars are fewer than in-sample + validation ({windows.in_sample + windows.validation})")
    window = Window(start, validation_start, n)
    candidates = []
    for strategy in strategies:
        chosen = choose_parameters(bars, strategy, strategy.parameter_sets(), window, objective, config, search)
        metrics = out_of_sample_metrics(bars, strategy, chosen["params"], window, config)
        returns = _returns(metrics.pop("equity"), config.init_cash)
        candidates.append(
            {
                "strategy": strategy.name,
                "params": chosen["params"],
                "in_sample_score": float(chosen["score"]),
                "validation": metrics,
                "returns": returns,
                "score": _score(metrics, objective),
            }
        )
    best = max(candidates, key=lambda c: c["score"])  # ties: the first strategy listed
    sharpes = np.array([sharpe_ratio(c["returns"]) for c in candidates])
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0
    dsr = deflated_sharpe_ratio(best["returns"], len(candidates), variance)
    beats_cash = best["validation"]["total_return"] > 0 and np.isfinite(dsr) and dsr >= min_dsr
    grid = configuration_returns(bars, strategies, start, config)
    pbo = (
        probability_of_backtest_overfitting(grid, windows.pbo_blocks).pbo
        if grid.shape[1] >= 2 and grid.shape[0] >= 2 * windows.pbo_blocks
        else float("nan")
    )
    return Decision(
        decision_index=n,
        strategy=best["strategy"] if beats_cash else CASH,
        params=dict(best["params"]) if beats_cash else {},
        candidate=best["strategy"],
        validation=best["validation"],
        n_trials=len(candidates),
        dsr=dsr,
        pbo=pbo,
        configurations=grid.shape[1],
        candidates=[{k: v for k, v in c.items() if k != "returns"} for c in candidates],
    )


def reported_record(
    bars: Bars, decision: Decision, strategies: dict[str, Strategy], test: int, config: BacktestConfig
) -> dict | None:
    """The choice's metrics on the test window [decision, decision + test) with its per-bar ``equity``, or None
    while that window is not complete in ``bars``. Cash earns nothing and trades nothing. Includes buy and hold
    over the same bars."""
    i = decision.decision_index
    if i + test > len(bars["close"]) or i == 0:
        return None
    buy_and_hold = float(bars["close"][i + test - 1] / bars["close"][i - 1] - 1)
    if decision.strategy == CASH:
        flat = np.full(test, config.init_cash)
        return {"total_return": 0.0, "sharpe": float("nan"), "max_drawdown": 0.0, "trades": 0.0, "equity": flat} | {
            "buy_and_hold_return": buy_and_hold
        }
    strategy = strategies[decision.strategy]
    metrics = out_of_sample_metrics(bars, strategy, decision.params, Window(0, i, i + test), config)
    return metrics | {"buy_and_hold_return": buy_and_hold}


def span_needed(strategies: list[Strategy], windows: Windows) -> int:
    """Bars one decision reads before its decision time: in-sample + validation, plus the longest indicator
    warm-up of any parameter set (so a decision's cost does not grow with the history behind it)."""
    warmup = max((s.warmup(p) for s in strategies for p in s.parameter_sets()), default=0)
    return windows.in_sample + windows.validation + warmup


def rolling_choices(
    bars: Bars,
    strategies: list[Strategy],
    windows: Windows,
    *,
    every: timedelta,
    end: datetime,
    objective: str,
    min_dsr: float,
    config: BacktestConfig = BacktestConfig(),
    search: Search = Search(),
    decided: Mapping[datetime, tuple[str, dict, bool]] | None = None,
) -> Iterator[tuple[datetime, Decision | None, dict | None]]:
    """(decided_at, decision, test record or None) for every anchored decision time with enough history, in time
    order. Each decision reads the :func:`span_needed` bars before its decision bar only; the test record reads
    the bars after it. ``decided``: decision times already decided (decided_at -> (strategy, params, test
    reported)): they are not decided again (decision None); their test record comes once its window has ended
    and was not reported yet (None otherwise)."""
    by_name = {s.name: s for s in strategies}
    decided = decided or {}
    history = windows.in_sample + windows.validation
    span = span_needed(strategies, windows)
    for decided_at, index in decision_indices(bars["bucket"], every, end, history):
        if decided_at in decided:
            strategy, params, reported = decided[decided_at]
            if reported:
                continue
            stored = Decision(index, strategy, params, "", {}, 0, float("nan"), float("nan"), 0)
            test = (
                reported_record(bars, stored, by_name, windows.test, config)
                if strategy in by_name or strategy == CASH
                else None
            )
            if test is not None:
                yield decided_at, None, test
            continue
        start = max(0, index - span)
        decision = decide(
            _slice(bars, start, index),
            strategies,
            windows,
            objective=objective,
            min_dsr=min_dsr,
            config=config,
            search=search,
        )
        decision = replace(decision, decision_index=index)
        yield decided_at, decision, reported_record(bars, decision, by_name, windows.test, config)

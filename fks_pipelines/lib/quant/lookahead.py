"""Automatic look-ahead detection (what freqtrade's ``lookahead-analysis`` does for its users).

A strategy is honest when its signal at bar t depends on bars <= t only. For a sample of bars t, the
signals are recomputed on the history truncated at t (bars 0..t) and compared with the signals the full
history gives on those same bars; a signal that changes when the future is removed was computed from the
future. The sample is spread evenly over the history after the strategy's warm-up, for a few parameter sets
(the defaults, then sets spread over the grid), so one check costs ``samples x parameter sets`` signal calls on
histories no longer than the full one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fks_pipelines.lib.errors import FksError
from fks_pipelines.lib.quant.strategies import Bars, Strategy


class LookAheadError(FksError):
    """A strategy whose signals use bars after the one they are acted on."""


@dataclass(frozen=True)
class Finding:
    truncated_at: int  # the history ended at this bar...
    bar: int  # ...and the signal on this bar (<= truncated_at) changed
    signal: str  # "entries" | "exits"
    params: Mapping
    full: bool  # the value with the full history
    truncated: bool  # the value with the history truncated at truncated_at

    def line(self) -> str:
        return (
            f"bar {self.bar}: {self.signal} {self.full} with the full history, {self.truncated} with history up to "
            f"bar {self.truncated_at}; params {dict(self.params)}"
        )


def checked_parameter_sets(strategy: Strategy, max_sets: int) -> list[dict]:
    """The defaults first, then parameter sets spread evenly over the grid (at most ``max_sets`` in all)."""
    grid = strategy.parameter_sets()
    chosen = [dict(strategy.defaults)] if strategy.defaults else []
    if max_sets > len(chosen) and grid:
        step = max(1, len(grid) // (max_sets - len(chosen)))
        chosen += [p for p in grid[::step] if p not in chosen]
    return chosen[:max_sets]


def sample_bars(n_bars: int, start: int, samples: int) -> list[int]:
    """``samples`` bar indices spread evenly over [start, n_bars - 2] (the last bar has no future to peek at)."""
    if n_bars - 1 <= start:
        return []
    return sorted({int(t) for t in np.linspace(start, n_bars - 2, num=samples)})


def lookahead_findings(
    strategy: Strategy,
    bars: Bars,
    *,
    parameter_sets: list[dict] | None = None,
    samples: int = 20,
    max_sets: int = 3,
    stop_after: int = 10,
) -> list[Finding]:
    """The bars where truncating the history changed a signal (empty: no look-ahead found), the first
    ``stop_after`` found, in the order checked (parameter set, then truncation point)."""
    n = len(bars["close"])
    findings: list[Finding] = []
    for params in parameter_sets if parameter_sets is not None else checked_parameter_sets(strategy, max_sets):
        full = strategy.signals(bars, **params)
        for t in sample_bars(n, min(strategy.warmup(params), n // 2), samples):
            truncated = strategy.signals({k: v[: t + 1] for k, v in bars.items()}, **params)
            for name, whole, cut in zip(("entries", "exits"), full, truncated, strict=True):
                differs = np.flatnonzero(whole[: t + 1] != cut)
                if len(differs):
                    bar = int(differs[0])
                    findings.append(Finding(t, bar, name, params, bool(whole[bar]), bool(cut[bar])))
                    if len(findings) >= stop_after:
                        return findings
    return findings


def screen_strategies(
    strategies: list[Strategy], bars: Bars, policy: str, samples: int = 10
) -> tuple[list[Strategy], dict[str, list[Finding]]]:
    """The look-ahead policy sweeps and walk-forward apply (``FKS_LOOKAHEAD_POLICY``): ``off`` checks nothing;
    ``flag`` runs every strategy and returns the findings of those that peek; ``refuse`` raises
    :class:`LookAheadError` naming each that peeks and its first bar and parameters."""
    if policy == "off":
        return strategies, {}
    flagged = {s.name: f for s in strategies if (f := lookahead_findings(s, bars, samples=samples, stop_after=3))}
    if flagged and policy == "refuse":
        first = "; ".join(f"{name}: {found[0].line()}" for name, found in flagged.items())
        raise LookAheadError(
            "look-ahead found (FKS_LOOKAHEAD_POLICY=refuse; `fks lookahead-analysis --strategy NAME` lists it): "
            + first
        )
    return strategies, flagged

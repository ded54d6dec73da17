"""Trading strategies as signal generators, each with its parameter grid: what a strategy is, and the helpers its
file uses (crossings, the sweep's indicator memo). The strategies themselves are files, the built-ins in the package
(``fks_pipelines/strategies/``) and the user's (``FKS_STRATEGIES_DIR``), loaded by name into a ``Registry`` by
``strategy_files.load_strategies``.

A strategy maps bars and one parameter set to boolean ``entries``/``exits`` arrays where the
signal at bar t uses bars <= t only. Orders then fill at the next bar's open (see backtest.py), so no
strategy can trade on a close it has not yet seen.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

Bars = Mapping[str, np.ndarray]  # open, high, low, close (float64, same length)
Signals = tuple[np.ndarray, np.ndarray]

# The stops a strategy file may declare, fixed (``STOPS``) or searched (``GRID``), as fractions of the entry fill
# price; executed by vectorbt's own stop orders (backtest.py). They are not parameters of ``signals``.
STOP_KEYS = ("stop_loss", "take_profit", "trailing_stop")


def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True at t when a[t] > b[t] and a[t-1] <= b[t-1] (both defined)."""
    out = np.zeros(a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
    return out


def crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return crossed_above(b, a)


class IndicatorMemo:
    """The indicators computed on one sweep's closes, by function name and arguments: a sweep asks for the same
    SMA or band for many parameter sets (the MA grid's 397 pairs use 52 windows), so each is computed once per
    sweep. Bounded by ``max_cells`` cached floats; past that, indicators are computed without being kept."""

    def __init__(self, close: np.ndarray, max_cells: int = 40_000_000):
        self.close = np.asarray(close, dtype=np.float64)
        self.values: dict[tuple, object] = {}
        self.free_cells = max_cells

    def value(self, function: Callable, *args):
        """``function(close, *args)``, computed once."""
        key = (function.__name__, *args)
        if key not in self.values:
            value = function(self.close, *args)
            cells = sum(np.size(v) for v in (value if isinstance(value, tuple) else (value,)))
            if cells > self.free_cells:
                return value
            self.free_cells -= cells
            self.values[key] = value
        return self.values[key]


class SweepFrame(pl.DataFrame):
    """The polars frame a strategy file's ``signals`` gets during a sweep: the sweep's bars, carrying the sweep's
    :class:`IndicatorMemo` (a frame derived from it carries none: its closes may differ)."""

    indicator_memo: IndicatorMemo


class SweepBars(dict):
    """The bars of one sweep, carrying their :class:`IndicatorMemo` and the polars frame strategy files get (built
    once per sweep; it shares the float64 columns and the memo)."""

    def __init__(self, bars: Bars, max_cells: int = 40_000_000):
        super().__init__(bars)
        self.indicator_memo = IndicatorMemo(bars["close"], max_cells)
        self._frame: SweepFrame | None = None

    def frame(self) -> SweepFrame:
        if self._frame is None:
            self._frame = SweepFrame({name: np.asarray(values) for name, values in self.items()})
            self._frame.indicator_memo = self.indicator_memo
        return self._frame


def indicator(bars: object, function: Callable, *args):
    """``function(close, *args)`` for ``bars`` (a mapping of numpy columns or a strategy file's polars frame),
    memoised by the sweep's :class:`IndicatorMemo` when ``bars`` carry one (:class:`SweepBars`, the
    :class:`SweepFrame` built from them)."""
    memo = getattr(bars, "indicator_memo", None)
    if isinstance(memo, IndicatorMemo):
        return memo.value(function, *args)
    return function(np.asarray(bars["close"], dtype=np.float64), *args)  # type: ignore[index]


@dataclass(frozen=True)
class Strategy:
    name: str
    signals: Callable[..., Signals]
    grid: Mapping[str, tuple] = field(default_factory=dict)
    valid: Callable[[dict], bool] = lambda p: True
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None  # the strategy file, for a user strategy; None for a built-in
    warmup_bars: Callable[[dict], int] | None = None  # the file's warmup(params), when it defines one
    stops: Mapping[str, float] = field(default_factory=dict)  # the file's fixed STOPS (a subset of STOP_KEYS)

    @property
    def has_stops(self) -> bool:
        """Whether any parameter set trades with a stop: fixed in ``STOPS`` or searched in ``GRID``."""
        return bool(self.stops) or any(key in self.grid for key in STOP_KEYS)

    def stops_for(self, params: Mapping) -> dict[str, float]:
        """The stops ``params`` trade with: the fixed ``STOPS``, then the stop parameters searched in ``GRID``
        (a GRID value None: no such stop in that cell). Empty: no stop, the signals alone decide."""
        merged = {**self.stops, **{key: params[key] for key in STOP_KEYS if key in params}}
        return {key: float(value) for key, value in merged.items() if value is not None}

    def parameter_sets(self) -> list[dict]:
        keys = list(self.grid)
        combos = (dict(zip(keys, values, strict=True)) for values in itertools.product(*self.grid.values()))
        return [p for p in combos if self.valid(p)]

    def warmup(self, params: Mapping) -> int:
        """Bars before the signals can be defined (a look-back to prepend when walking forward). A user
        strategy file's ``warmup(params)`` says; without one, its integer parameters are all taken for windows
        (the safe side: a longer warm-up)."""
        if self.warmup_bars is not None:
            return int(self.warmup_bars(dict(params)))
        if self.source is not None:
            windows = [int(v) for v in params.values() if isinstance(v, int) and not isinstance(v, bool)]
        else:
            windows = [int(v) for k, v in params.items() if k in ("fast", "slow", "window", "signal")]
        return 3 * max(windows, default=1)


# The built-in strategies' files (``fks_pipelines/strategies/``): loaded like the user's, listed as built-ins.
BUILTIN_DIR = Path(__file__).resolve().parents[2] / "strategies"
BUILTIN_MODULE_PREFIX = "fks_pipelines.strategies."


def builtin_names() -> list[str]:
    """The built-in strategies' names (their files' names), without loading them."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.py") if not p.name.startswith("_"))


def signal_matrix(strategy: Strategy, bars: Bars, parameter_sets: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(entries, exits) as (bars x parameter sets) boolean matrices."""
    pairs = [strategy.signals(bars, **p) for p in parameter_sets]
    return np.column_stack([e for e, _ in pairs]), np.column_stack([x for _, x in pairs])


def chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

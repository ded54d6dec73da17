"""Trading strategies as signal generators, each with its parameter grid, all by name in :data:`STRATEGIES`:
the built-ins (strategy files in the package, ``fks_pipelines/strategies/``) and the user's (``FKS_STRATEGIES_DIR``),
both loaded by strategy_files.py.

A strategy maps bars and one parameter set to boolean ``entries``/``exits`` arrays where the
signal at bar t uses bars <= t only. Orders then fill at the next bar's open (see backtest.py), so no
strategy can trade on a close it has not yet seen.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


class SweepBars(dict):
    """Bars that remember the indicators computed on them: a sweep asks for the same SMA or band for many
    parameter sets (the MA grid's 397 pairs use 52 windows), so each is computed once per sweep. Bounded by
    ``max_cells`` cached floats; past that, indicators are computed without being kept."""

    def __init__(self, bars: Bars, max_cells: int = 40_000_000):
        super().__init__(bars)
        self.memo: dict[tuple, object] = {}
        self.free_cells = max_cells


# The polars frame a strategy file's ``signals`` gets for a SweepBars (built once per sweep, strategy_files.py)
# -> that SweepBars, by the frame's id while the frame lives (a DataFrame is not hashable), so ``indicator``
# finds the sweep's cache from the frame.
_SWEEP_OF_FRAME: dict[int, weakref.ref] = {}


def link_frame(frame: object, bars: SweepBars) -> None:
    _SWEEP_OF_FRAME[id(frame)] = weakref.ref(bars)
    weakref.finalize(frame, _SWEEP_OF_FRAME.pop, id(frame), None)


def _sweep_bars(bars: object) -> SweepBars | None:
    if isinstance(bars, SweepBars):
        return bars
    ref = _SWEEP_OF_FRAME.get(id(bars))
    return ref() if ref is not None else None


def indicator(bars: object, function: Callable, *args):
    """``function(close, *args)`` for ``bars`` (a mapping of numpy columns or a strategy file's polars frame),
    memoised when they are a sweep's (:class:`SweepBars`, or the frame built from one)."""
    sweep = _sweep_bars(bars)
    if sweep is None:
        return function(np.asarray(bars["close"], dtype=np.float64), *args)  # type: ignore[index]
    key = (function.__name__, *args)
    if key not in sweep.memo:
        value = function(np.asarray(sweep["close"], dtype=np.float64), *args)
        cells = sum(np.size(v) for v in (value if isinstance(value, tuple) else (value,)))
        if cells > sweep.free_cells:
            return value
        sweep.free_cells -= cells
        sweep.memo[key] = value
    return sweep.memo[key]


def ma_cross(bars: Bars, fast: int, slow: int) -> Signals:
    """The built-in ``ma_cross`` strategy's signals (``fks_pipelines/strategies/ma_cross.py``), callable directly."""
    return STRATEGIES["ma_cross"].signals(bars, fast=fast, slow=slow)


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


class _Registry(dict):
    """A dict filled on first use: the built-ins, then every strategy file in ``FKS_STRATEGIES_DIR`` (read then,
    not at import). A refused file's name maps to its one-line error: looking it up raises that error
    (StrategyFileError, exit 2 in the CLI) while every other strategy keeps working."""

    loaded = False
    errors: dict[str, str] = {}

    def _ensure(self) -> None:
        if not _Registry.loaded:
            refresh_strategies()

    def __getitem__(self, key):
        self._ensure()
        if key in _Registry.errors and not dict.__contains__(self, key):
            from fks_pipelines.lib.quant.strategy_files import StrategyFileError

            raise StrategyFileError(_Registry.errors[key])
        return dict.__getitem__(self, key)

    def __contains__(self, key) -> bool:
        self._ensure()
        return dict.__contains__(self, key)

    def __iter__(self):
        self._ensure()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._ensure()
        return dict.__len__(self)

    def keys(self):
        self._ensure()
        return dict.keys(self)

    def values(self):
        self._ensure()
        return dict.values(self)

    def items(self):
        self._ensure()
        return dict.items(self)

    def get(self, key, default=None):
        self._ensure()
        return dict.get(self, key, default)

    def __repr__(self) -> str:
        self._ensure()
        return dict.__repr__(self)


STRATEGIES: dict[str, Strategy] = _Registry()
# Each strategy's default parameters, by name (the built-ins' textbook settings, a file's DEFAULTS).
DEFAULT_PARAMS: dict[str, dict] = _Registry()


def refresh_strategies(directory: Path | None = None) -> dict[str, str]:
    """(Re)load :data:`STRATEGIES` and :data:`DEFAULT_PARAMS` in place: the built-ins, then the files in
    ``directory`` (default: ``FKS_STRATEGIES_DIR``). Returns the refused files' one-line errors by name; a file
    named like a built-in is refused."""
    from fks_pipelines.lib.quant.strategy_files import StrategyLimits, load_strategy_dir
    from fks_pipelines.settings import Settings

    builtins, broken = load_strategy_dir(BUILTIN_DIR, builtin=True)
    if broken:  # the package's own files: a bug, not the user's input
        raise RuntimeError(f"built-in strategy files refused: {broken}")
    settings = Settings.from_env()
    folder = directory if directory is not None else settings.strategies_dir
    limits = StrategyLimits(settings.strategy_max_grid, settings.strategy_timeout_s)
    user, errors = load_strategy_dir(folder, limits=limits) if folder is not None else ({}, {})
    for name in sorted(set(user) & set(builtins)):
        errors[name] = f"{user.pop(name).source}: {name!r} is a built-in strategy; rename the file"
    merged = {**builtins, **user}
    dict.clear(STRATEGIES)
    dict.update(STRATEGIES, merged)
    dict.clear(DEFAULT_PARAMS)
    dict.update(DEFAULT_PARAMS, {n: dict(s.defaults) for n, s in merged.items()})
    _Registry.errors = errors
    _Registry.loaded = True
    return errors


def strategy_file_errors() -> dict[str, str]:
    """The one-line error of each user strategy file refused at load (import failed, exited, GRID too large...),
    by name; they are left out of :data:`STRATEGIES`, and the pipeline's runs log them."""
    STRATEGIES.keys()  # loads the registry on first use
    return dict(_Registry.errors)


def signal_matrix(strategy: Strategy, bars: Bars, parameter_sets: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(entries, exits) as (bars x parameter sets) boolean matrices."""
    pairs = [strategy.signals(bars, **p) for p in parameter_sets]
    return np.column_stack([e for e, _ in pairs]), np.column_stack([x for _, x in pairs])


def chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

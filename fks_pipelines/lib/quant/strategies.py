"""Trading strategies as signal generators, each with its parameter grid: the built-ins below and the user's
strategy files (strategy_files.py), all by name in :data:`STRATEGIES`.

A strategy maps bars (numpy arrays) and one parameter set to boolean ``entries``/``exits`` arrays where the
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

from fks_pipelines.lib.quant import indicators as ind

Bars = Mapping[str, np.ndarray]  # open, high, low, close (float64, same length)
Signals = tuple[np.ndarray, np.ndarray]


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


def indicator(bars: Bars, function: Callable, *args):
    """``function(bars["close"], *args)``, memoised when ``bars`` is a :class:`SweepBars`."""
    if not isinstance(bars, SweepBars):
        return function(bars["close"], *args)
    key = (function.__name__, *args)
    if key not in bars.memo:
        value = function(bars["close"], *args)
        cells = sum(np.size(v) for v in (value if isinstance(value, tuple) else (value,)))
        if cells > bars.free_cells:
            return value
        bars.free_cells -= cells
        bars.memo[key] = value
    return bars.memo[key]


def ma_cross(bars: Bars, fast: int, slow: int) -> Signals:
    """Long when the fast SMA crosses above the slow one; out when it crosses back below."""
    f, s = indicator(bars, ind.sma, fast), indicator(bars, ind.sma, slow)
    return crossed_above(f, s), crossed_below(f, s)


def rsi_reversion(bars: Bars, window: int, lower: float, upper: float) -> Signals:
    """Buy oversold (RSI crosses below ``lower``), sell overbought (RSI crosses above ``upper``)."""
    r = indicator(bars, ind.rsi, window)
    return crossed_below(r, np.full_like(r, lower)), crossed_above(r, np.full_like(r, upper))


def macd_cross(bars: Bars, fast: int, slow: int, signal: int) -> Signals:
    line, sig, _ = indicator(bars, ind.macd, fast, slow, signal)
    return crossed_above(line, sig), crossed_below(line, sig)


def bollinger_reversion(bars: Bars, window: int, k: float) -> Signals:
    """Buy a close below the lower band, sell at the middle band."""
    lower, middle, _ = indicator(bars, ind.bollinger, window, k)
    close = bars["close"]
    return crossed_below(close, lower), crossed_above(close, middle)


def bollinger_breakout(bars: Bars, window: int, k: float) -> Signals:
    """Buy a close above the upper band, sell when it falls back below the middle band."""
    _, middle, upper = indicator(bars, ind.bollinger, window, k)
    close = bars["close"]
    return crossed_above(close, upper), crossed_below(close, middle)


@dataclass(frozen=True)
class Strategy:
    name: str
    signals: Callable[..., Signals]
    grid: Mapping[str, tuple] = field(default_factory=dict)
    valid: Callable[[dict], bool] = lambda p: True
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None  # the strategy file, for a user strategy; None for a built-in

    def parameter_sets(self) -> list[dict]:
        keys = list(self.grid)
        combos = (dict(zip(keys, values, strict=True)) for values in itertools.product(*self.grid.values()))
        return [p for p in combos if self.valid(p)]

    def warmup(self, params: Mapping) -> int:
        """Bars before the signals can be defined (a look-back to prepend when walking forward). A user
        strategy's integer parameters are all taken for windows (the safe side: a longer warm-up)."""
        if self.source is not None:
            windows = [int(v) for v in params.values() if isinstance(v, int) and not isinstance(v, bool)]
        else:
            windows = [int(v) for k, v in params.items() if k in ("fast", "slow", "window", "signal")]
        return 3 * max(windows, default=1)


BUILTIN_STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "ma_cross",
            ma_cross,
            {"fast": (5, 10, 15, 20, 25, 30, 40, 50, 60, 80), "slow": tuple(range(20, 440, 10))},  # 397 pairs
            lambda p: p["fast"] < p["slow"],
        ),
        Strategy(
            "rsi_reversion",
            rsi_reversion,
            {"window": (7, 14, 21), "lower": (20, 25, 30, 35), "upper": (65, 70, 75, 80)},
        ),
        Strategy(
            "macd_cross",
            macd_cross,
            {"fast": (8, 12, 16), "slow": (21, 26, 34), "signal": (5, 9, 13)},
            lambda p: p["fast"] < p["slow"],
        ),
        Strategy("bollinger_reversion", bollinger_reversion, {"window": (10, 20, 40), "k": (1.5, 2.0, 2.5, 3.0)}),
        Strategy("bollinger_breakout", bollinger_breakout, {"window": (10, 20, 40), "k": (1.5, 2.0, 2.5, 3.0)}),
    )
}


# What each built-in trades before any walk-forward choice exists (textbook settings).
BUILTIN_DEFAULTS: dict[str, dict] = {
    "ma_cross": {"fast": 20, "slow": 50},
    "rsi_reversion": {"window": 14, "lower": 30, "upper": 70},
    "macd_cross": {"fast": 12, "slow": 26, "signal": 9},
    "bollinger_reversion": {"window": 20, "k": 2.0},
    "bollinger_breakout": {"window": 20, "k": 2.0},
}
for _name, _strategy in BUILTIN_STRATEGIES.items():
    BUILTIN_STRATEGIES[_name] = Strategy(
        _strategy.name,
        _strategy.signals,
        _strategy.grid,
        _strategy.valid,
        description=(_strategy.signals.__doc__ or "").strip(),
        defaults=BUILTIN_DEFAULTS[_name],
    )


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
    from fks_pipelines.lib.quant.strategy_files import load_strategy_dir
    from fks_pipelines.settings import Settings

    folder = directory if directory is not None else Settings.from_env().strategies_dir
    user, errors = load_strategy_dir(folder)
    for name in sorted(set(user) & set(BUILTIN_STRATEGIES)):
        errors[name] = f"{user.pop(name).source}: {name!r} is a built-in strategy; rename the file"
    merged = {**BUILTIN_STRATEGIES, **user}
    dict.clear(STRATEGIES)
    dict.update(STRATEGIES, merged)
    dict.clear(DEFAULT_PARAMS)
    dict.update(DEFAULT_PARAMS, {n: dict(s.defaults) for n, s in merged.items()})
    _Registry.errors = errors
    _Registry.loaded = True
    return errors


def signal_matrix(strategy: Strategy, bars: Bars, parameter_sets: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(entries, exits) as (bars x parameter sets) boolean matrices."""
    pairs = [strategy.signals(bars, **p) for p in parameter_sets]
    return np.column_stack([e for e, _ in pairs]), np.column_stack([x for _, x in pairs])


def chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

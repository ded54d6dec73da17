"""User strategies: one Python file each, in ``FKS_STRATEGIES_DIR`` (unset: none; never the working directory by
default). They are trusted code, run with the platform's rights (docs/security.md).

A strategy file defines
- ``signals(bars, **params) -> (entries, exits)``: ``bars`` is a polars DataFrame of one symbol's bars (open,
  high, low, close, volume when known; oldest first); ``entries`` and ``exits`` are boolean numpy arrays of the
  same length; a signal on bar t is acted on at bar t+1's open;
- ``GRID``: parameter name -> list of values (what sweeps, walk-forward and Optuna search);
- optionally a module docstring (its description), ``DEFAULTS`` (what it trades before any walk-forward
  choice exists; default: each parameter's first grid value), ``valid(params) -> bool`` (which combinations
  of the grid are searched, e.g. fast < slow; default: all) and ``warmup(params) -> int`` (bars the signals
  need before they are defined, prepended when walking forward; default: 3 x the largest integer parameter);
- optionally stops, as fractions of the entry fill price: ``stop_loss`` and ``trailing_stop`` in (0, 1),
  ``take_profit`` > 0, fixed in ``STOPS = {"stop_loss": 0.05}`` or searched as ``GRID`` keys (a value None: no
  such stop in that cell). They are executed by vectorbt's stop orders in every backtest, sweep, walk-forward
  and Optuna search (backtest.py) and are never passed to ``signals``. vectorbt holds one stop-loss per position,
  fixed or trailing, so a file declares ``stop_loss`` or ``trailing_stop``, not both.

The built-in strategies are files of this interface too, in ``fks_pipelines/strategies/``, loaded by this
same loader (``builtin=True``: imported as package modules, listed with ``source`` None).

The file name without ``.py`` is the strategy's name; files starting with ``_`` are ignored. A file that is
broken (does not import, no ``signals``, a bad ``GRID`` or ``DEFAULTS``) is refused with one line naming the file
and what is wrong, and so is a call that returns arrays of the wrong length or dtype, NaN signals, or gets a
parameter not in ``GRID``: :class:`StrategyFileError`, a :class:`BadInputError` (the CLI exits 2). So is a file
that exits at import (``sys.exit``), a ``signals`` that raises or exits, a ``GRID`` of more than
``FKS_STRATEGY_MAX_GRID`` combinations, and a ``signals`` call running past ``FKS_STRATEGY_TIMEOUT`` seconds (on a
process's main thread, where a timer signal can stop it; code stuck inside one C call is stopped when it returns).
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.quant.strategies import (
    BUILTIN_DIR,
    BUILTIN_MODULE_PREFIX,
    STOP_KEYS,
    Bars,
    Signals,
    Strategy,
    SweepBars,
)

MODULE_PREFIX = "fks_user_strategies."


class StrategyFileError(BadInputError):
    """A strategy file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class StrategyLimits:
    """What one user strategy may take: GRID combinations, and seconds per ``signals`` call (None: no limit)."""

    max_grid: int | None = None
    timeout_s: float | None = None


NO_LIMITS = StrategyLimits()


class _TimedOut(Exception):
    pass


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise _TimedOut in the block after ``seconds`` (a SIGALRM timer: only on the main thread, else no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum, _frame):
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def bars_frame(bars: Bars) -> pl.DataFrame:
    """The polars view of a mapping of numpy columns (float64 columns are shared, not copied); a sweep's
    (:class:`SweepBars`) is built once and carries the sweep's indicator memo."""
    if isinstance(bars, pl.DataFrame):
        return bars
    if isinstance(bars, SweepBars):
        return bars.frame()
    return pl.DataFrame({name: np.asarray(values) for name, values in bars.items()})


def _checked_array(value: object, what: str, n: int, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1 or len(array) != n:
        raise StrategyFileError(f"signals returned {what} of shape {array.shape} for {n} bars", where=where)
    if array.dtype.kind == "f" and np.isnan(array).any():
        first = int(np.flatnonzero(np.isnan(array))[0])
        raise StrategyFileError(f"signals returned NaN {what} (first at bar {first}); use False", where=where)
    if array.dtype != np.bool_:
        raise StrategyFileError(f"signals returned {what} of dtype {array.dtype}, not bool", where=where)
    return array


def checked_signals(
    function: Callable[..., object], grid: Mapping[str, tuple], where: str, timeout_s: float | None = None
) -> Callable[..., Signals]:
    """``function`` behind the interface's checks: known parameters in, two boolean arrays of the bars'
    length out, within ``timeout_s`` seconds; raising or exiting is a StrategyFileError naming the file."""

    def signals(bars: Bars, **params) -> Signals:
        unknown = sorted(set(params) - set(grid))
        if unknown:
            raise StrategyFileError(
                f"parameters not in GRID: {', '.join(unknown)} (GRID has {', '.join(grid)})", where=where
            )
        params = {key: value for key, value in params.items() if key not in STOP_KEYS}  # executed, not signalled
        frame = bars_frame(bars)
        try:
            with _time_limit(timeout_s):
                result = function(frame, **params)
        except BadInputError:
            raise
        except _TimedOut:
            raise StrategyFileError(
                f"signals({params}) ran past {timeout_s:g} s (FKS_STRATEGY_TIMEOUT) and was stopped", where=where
            ) from None
        except SystemExit as exc:
            raise StrategyFileError(f"signals({params}) called sys.exit({exc.code!r})", where=where) from None
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else ""
            raise StrategyFileError(f"signals({params}) raised {type(exc).__name__}: {message}", where=where) from exc
        if not isinstance(result, tuple) or len(result) != 2:
            raise StrategyFileError("signals must return a tuple (entries, exits)", where=where)
        n = frame.height
        return _checked_array(result[0], "entries", n, where), _checked_array(result[1], "exits", n, where)

    return signals


def _grid(module: object, where: str) -> dict[str, tuple]:
    grid = getattr(module, "GRID", None)
    if not isinstance(grid, Mapping) or not grid:
        raise StrategyFileError("GRID must be a non-empty dict of parameter name -> list of values", where=where)
    out: dict[str, tuple] = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise StrategyFileError(f"GRID key {name!r} is not a parameter name", where=where)
        if isinstance(values, str | bytes) or not isinstance(values, list | tuple | range) or len(values) == 0:
            raise StrategyFileError(f"GRID[{name!r}] must be a non-empty list of values", where=where)
        out[name] = tuple(values)
    return out


def _stop_value(key: str, value: object, what: str, where: str, allow_none: bool) -> None:
    """A stop must be a fraction of the entry price: in (0, 1) for a stop-loss or trailing stop, > 0 for a
    take-profit (None, in a GRID: no such stop in that cell)."""
    if value is None and allow_none:
        return
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    upper = key != "take_profit"
    if not number or value <= 0 or (upper and value >= 1):  # type: ignore[operator]
        bounds = "in (0, 1)" if upper else "> 0"
        example = "0.05" if upper else "0.1"
        none = " or None" if allow_none else ""
        raise StrategyFileError(
            f"{what} must be a fraction of the entry price {bounds}{none} (e.g. {example}), not {value!r}", where=where
        )


def stop_from_text(key: str, raw: str, where: str) -> float | None:
    """A stop given as text (a command line's ``--params stop_loss=0.03``; ``none``: no such stop), checked as a
    file's GRID value is: :class:`StrategyFileError` naming ``where`` and the key otherwise."""
    text = raw.strip().lower()
    if text in ("none", "off"):
        return None
    try:
        value: object = float(text)
    except ValueError:
        value = raw
    _stop_value(key, value, f"{key}={raw!r}", where, allow_none=False)
    return float(value)  # type: ignore[arg-type]


def _stops(module: object, grid: Mapping[str, tuple], where: str) -> dict[str, float]:
    """The file's fixed ``STOPS``, checked with the stop parameters its GRID searches."""
    stops = getattr(module, "STOPS", None)
    if stops is None:
        stops = {}
    if not isinstance(stops, Mapping):
        raise StrategyFileError(f"STOPS must be a dict of {', '.join(STOP_KEYS)} -> fraction", where=where)
    for key, value in stops.items():
        if key not in STOP_KEYS:
            raise StrategyFileError(f"STOPS key {key!r} is not one of {', '.join(STOP_KEYS)}", where=where)
        if key in grid:
            raise StrategyFileError(f"{key} is both fixed in STOPS and searched in GRID; keep one", where=where)
        _stop_value(key, value, f"STOPS[{key!r}]", where, allow_none=False)
    for key in STOP_KEYS:
        for value in grid.get(key, ()):
            _stop_value(key, value, f"GRID[{key!r}] values", where, allow_none=True)
    declared = set(stops) | (set(grid) & set(STOP_KEYS))
    if {"stop_loss", "trailing_stop"} <= declared:
        raise StrategyFileError(
            "declares both stop_loss and trailing_stop: a position holds one stop-loss, fixed or trailing; keep one",
            where=where,
        )
    return {key: float(value) for key, value in stops.items()}


def _optional_function(module: object, name: str, where: str) -> Callable | None:
    function = getattr(module, name, None)
    if function is not None and not callable(function):
        raise StrategyFileError(f"{name} must be a function of the parameters dict", where=where)
    return function


def load_strategy_file(path: Path, builtin: bool = False, limits: StrategyLimits = NO_LIMITS) -> Strategy:
    """The strategy ``path`` defines, checked; :class:`StrategyFileError` names the file and the fault.
    ``builtin``: one of the package's own strategy files (no limits apply to them)."""
    where = str(path)
    name = path.stem
    if not name.isidentifier():
        raise StrategyFileError(f"{name!r} is not a valid strategy name (letters, digits, _)", where=where)
    prefix = BUILTIN_MODULE_PREFIX if builtin else MODULE_PREFIX
    spec = importlib.util.spec_from_file_location(prefix + name, path)
    if spec is None or spec.loader is None:
        raise StrategyFileError("is not a Python file", where=where)
    module = importlib.util.module_from_spec(spec)
    try:
        with _time_limit(None if builtin else limits.timeout_s):
            spec.loader.exec_module(module)
    except _TimedOut:
        raise StrategyFileError(f"took more than {limits.timeout_s:g} s to import", where=where) from None
    except SystemExit as exc:  # sys.exit() at import: the file's fault, not the command's exit code
        raise StrategyFileError(f"does not import: it called sys.exit({exc.code!r})", where=where) from None
    except Exception as exc:  # any failure to import is the file's fault; say which
        line = getattr(exc, "lineno", None)
        at = f" (line {line})" if line else ""
        message = (str(exc).splitlines() or [""])[0]
        raise StrategyFileError(f"does not import{at}: {type(exc).__name__}: {message}", where=where) from None
    sys.modules[prefix + name] = module  # worker processes forked later find it
    function = getattr(module, "signals", None)
    if not callable(function):
        raise StrategyFileError("defines no signals(bars, **params) function", where=where)
    grid = _grid(module, where)
    combinations = math.prod(len(values) for values in grid.values())
    if not builtin and limits.max_grid is not None and combinations > limits.max_grid:
        raise StrategyFileError(
            f"GRID has {combinations:,} combinations: at most {limits.max_grid:,} (FKS_STRATEGY_MAX_GRID)", where=where
        )
    defaults = getattr(module, "DEFAULTS", None)
    if defaults is None:
        defaults = {key: values[0] for key, values in grid.items()}
    if not isinstance(defaults, Mapping) or set(defaults) != set(grid):
        raise StrategyFileError(f"DEFAULTS must set exactly the GRID parameters ({', '.join(grid)})", where=where)
    stops = _stops(module, grid, where)
    try:
        inspect.signature(function).bind(None, **{k: v for k, v in defaults.items() if k not in STOP_KEYS})
    except TypeError as exc:
        raise StrategyFileError(f"signals does not take the GRID parameters: {exc}", where=where) from None
    description = (inspect.getdoc(module) or "").strip()
    valid = _optional_function(module, "valid", where)
    warmup = _optional_function(module, "warmup", where)
    return Strategy(
        name,
        checked_signals(function, grid, where, None if builtin else limits.timeout_s),
        grid,
        valid=(lambda p: bool(valid(p))) if valid is not None else (lambda p: True),
        description=description,
        defaults=dict(defaults),
        source=None if builtin else where,
        warmup_bars=warmup,
        stops=stops,
    )


def load_strategy_dir(
    directory: Path, builtin: bool = False, limits: StrategyLimits = NO_LIMITS
) -> tuple[dict[str, Strategy], dict[str, str]]:
    """(strategies by name, one-line error by name for the files refused); a missing folder holds none."""
    strategies: dict[str, Strategy] = {}
    errors: dict[str, str] = {}
    if not directory.is_dir():
        return strategies, errors
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            strategies[path.stem] = load_strategy_file(path, builtin, limits)
        except StrategyFileError as exc:
            errors[path.stem] = str(exc)
    return strategies, errors


@dataclass(frozen=True)
class Registry(Mapping[str, Strategy]):
    """The strategies one load found, by name: the built-ins, then a folder's files. A refused file's name maps to
    its one-line error in :attr:`errors`: looking it up raises that error (StrategyFileError, exit 2 in the CLI),
    while every other strategy keeps working. Made by :func:`load_strategies` and passed to whoever trades them."""

    strategies: Mapping[str, Strategy]
    errors: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Strategy:
        if name in self.errors and name not in self.strategies:
            raise StrategyFileError(self.errors[name])
        return self.strategies[name]

    def __contains__(self, name: object) -> bool:
        return name in self.strategies

    def __iter__(self) -> Iterator[str]:
        return iter(self.strategies)

    def __len__(self) -> int:
        return len(self.strategies)

    def get(self, name: str, default=None):
        """The strategy, or ``default`` for an unknown or refused name (never raises)."""
        return self.strategies.get(name, default)

    def default_params(self) -> dict[str, dict]:
        """Each strategy's default parameters, by name (the built-ins' textbook settings, a file's DEFAULTS)."""
        return {name: dict(strategy.defaults) for name, strategy in self.strategies.items()}


@cache
def builtin_strategies() -> Registry:
    """The package's own strategy files (``fks_pipelines/strategies/``), loaded once per process: they are code of
    the package, not the user's input, so a refused one is a bug."""
    strategies, broken = load_strategy_dir(BUILTIN_DIR, builtin=True)
    if broken:
        raise RuntimeError(f"built-in strategy files refused: {broken}")
    return Registry(strategies)


def load_strategies(directory: Path | None = None, limits: StrategyLimits = NO_LIMITS) -> Registry:
    """The built-ins, then the strategy files in ``directory`` (read now; None: the built-ins only) under
    ``limits``. A file named like a built-in is refused, as is a broken one (see the module's docstring)."""
    builtins = builtin_strategies()
    user, errors = load_strategy_dir(directory, limits=limits) if directory is not None else ({}, {})
    for name in sorted(set(user) & set(builtins)):
        errors[name] = f"{user.pop(name).source}: {name!r} is a built-in strategy; rename the file"
    return Registry({**builtins.strategies, **user}, errors)

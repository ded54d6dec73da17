"""User strategies: one Python file each, in ``FKS_STRATEGIES_DIR`` (default ``./strategies``).

A strategy file defines
- ``signals(bars, **params) -> (entries, exits)``: ``bars`` is a polars DataFrame of one symbol's bars (open,
  high, low, close, volume when known; oldest first); ``entries`` and ``exits`` are boolean numpy arrays of the
  same length; a signal on bar t is acted on at bar t+1's open;
- ``GRID``: parameter name -> list of values (what sweeps, walk-forward and Optuna search);
- optionally a module docstring (its description), ``DEFAULTS`` (what it trades before any walk-forward
  choice exists; default: each parameter's first grid value), ``valid(params) -> bool`` (which combinations
  of the grid are searched, e.g. fast < slow; default: all) and ``warmup(params) -> int`` (bars the signals
  need before they are defined, prepended when walking forward; default: 3 x the largest integer parameter).

The built-in strategies are files of this interface too, in ``fks_pipelines/strategies/``, loaded by this
same loader (``builtin=True``: imported as package modules, listed with ``source`` None).

The file name without ``.py`` is the strategy's name; files starting with ``_`` are ignored. A file that is
broken (does not import, no ``signals``, a bad ``GRID`` or ``DEFAULTS``) is refused with one line naming the file
and what is wrong, and so is a call that returns arrays of the wrong length or dtype, NaN signals, or gets a
parameter not in ``GRID``: :class:`StrategyFileError`, a :class:`BadInputError` (the CLI exits 2).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.quant.strategies import BUILTIN_MODULE_PREFIX, Bars, Signals, Strategy, SweepBars, link_frame

MODULE_PREFIX = "fks_user_strategies."


class StrategyFileError(BadInputError):
    """A strategy file that cannot be used; the message names the file and what is wrong."""


def bars_frame(bars: Bars) -> pl.DataFrame:
    """The polars view of a mapping of numpy columns (float64 columns are shared, not copied); kept on
    :class:`SweepBars` so a sweep builds it once."""
    if isinstance(bars, pl.DataFrame):
        return bars
    if isinstance(bars, SweepBars) and ("__frame__",) in bars.memo:
        return bars.memo[("__frame__",)]  # type: ignore[return-value]
    frame = pl.DataFrame({name: np.asarray(values) for name, values in bars.items()})
    if isinstance(bars, SweepBars):
        bars.memo[("__frame__",)] = frame
        link_frame(frame, bars)  # the sweep's indicator cache, found from the frame (strategies.indicator)
    return frame


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


def checked_signals(function: Callable[..., object], grid: Mapping[str, tuple], where: str) -> Callable[..., Signals]:
    """``function`` behind the interface's checks: known parameters in, two boolean arrays of the bars'
    length out."""

    def signals(bars: Bars, **params) -> Signals:
        unknown = sorted(set(params) - set(grid))
        if unknown:
            raise StrategyFileError(
                f"parameters not in GRID: {', '.join(unknown)} (GRID has {', '.join(grid)})", where=where
            )
        frame = bars_frame(bars)
        try:
            result = function(frame, **params)
        except BadInputError:
            raise
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


def _optional_function(module: object, name: str, where: str) -> Callable | None:
    function = getattr(module, name, None)
    if function is not None and not callable(function):
        raise StrategyFileError(f"{name} must be a function of the parameters dict", where=where)
    return function


def load_strategy_file(path: Path, builtin: bool = False) -> Strategy:
    """The strategy ``path`` defines, checked; :class:`StrategyFileError` names the file and the fault.
    ``builtin``: one of the package's own strategy files."""
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
        spec.loader.exec_module(module)
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
    defaults = getattr(module, "DEFAULTS", None)
    if defaults is None:
        defaults = {key: values[0] for key, values in grid.items()}
    if not isinstance(defaults, Mapping) or set(defaults) != set(grid):
        raise StrategyFileError(f"DEFAULTS must set exactly the GRID parameters ({', '.join(grid)})", where=where)
    try:
        inspect.signature(function).bind(None, **defaults)
    except TypeError as exc:
        raise StrategyFileError(f"signals does not take the GRID parameters: {exc}", where=where) from None
    description = (inspect.getdoc(module) or "").strip()
    valid = _optional_function(module, "valid", where)
    warmup = _optional_function(module, "warmup", where)
    return Strategy(
        name,
        checked_signals(function, grid, where),
        grid,
        valid=(lambda p: bool(valid(p))) if valid is not None else (lambda p: True),
        description=description,
        defaults=dict(defaults),
        source=None if builtin else where,
        warmup_bars=warmup,
    )


def load_strategy_dir(directory: Path, builtin: bool = False) -> tuple[dict[str, Strategy], dict[str, str]]:
    """(strategies by name, one-line error by name for the files refused); a missing folder holds none."""
    strategies: dict[str, Strategy] = {}
    errors: dict[str, str] = {}
    if not directory.is_dir():
        return strategies, errors
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            strategies[path.stem] = load_strategy_file(path, builtin)
        except StrategyFileError as exc:
            errors[path.stem] = str(exc)
    return strategies, errors

"""What a person gives one strategy run (`fks backtest`, `hyperopt`, `lookahead-analysis`, `plot`), made into
what the quantitative code takes: the bars (from kline files, or the dbt bar marts within a time range), the
parameters (``NAME=VALUE`` typed like the strategy's grid), the backtest configuration, and the best parameters
of a search. A bad value is a :class:`BadInputError` naming the option (one line, exit 2)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.quant.backtest import DEFAULT_CONVENTIONS, BacktestConfig, Conventions
from fks_pipelines.lib.quant.strategies import Bars, Strategy

MART_INTERVALS = ("1h", "1d")  # the bar marts: marts.fct_ohlcv_1h and marts.fct_ohlcv_1d


def parse_timerange(value: str | None) -> tuple[datetime | None, datetime | None]:
    """--timerange ``YYYYMMDD-YYYYMMDD`` (UTC days, the end exclusive; either side may be empty)."""
    if not value:
        return None, None
    try:
        first, last = value.split("-")
        start, end = (datetime.strptime(v, "%Y%m%d").replace(tzinfo=UTC) if v else None for v in (first, last))
    except ValueError:
        raise BadInputError(f"--timerange: {value!r} is not like 20240101-20240301") from None
    if start and end and end <= start:
        raise BadInputError(f"--timerange: {value!r} ends before it starts")
    return start, end


def load_bars(
    symbols: list[str],
    interval: str | None,
    timerange: str | None,
    files: Sequence[Path],
    *,
    market: str,
    database_url: Callable[[], str],
) -> tuple[dict[str, Bars], str]:
    """(bars per symbol, oldest first, and their interval) from ``files`` (every symbol they hold) or else from the
    bar mart of ``interval`` (default 1h) for ``symbols``, within ``timerange``. ``database_url`` is called only
    when the marts are read, so a run on files never starts a database. No bars at all: BadInputError."""
    start, end = parse_timerange(timerange)
    out: dict[str, Bars]
    if files:
        out, interval = _file_bars(files, interval, start, end)
    else:
        from fks_pipelines.lib.db.connect import connect
        from fks_pipelines.lib.db.marts import read_bars

        interval = interval or "1h"
        if interval not in MART_INTERVALS:
            raise BadInputError(f"--interval: the marts hold 1h and 1d bars, not {interval}")
        first, stop = start or datetime(1970, 1, 1, tzinfo=UTC), end or datetime(2100, 1, 1, tzinfo=UTC)
        with connect(database_url()) as conn:
            held = read_bars(conn, f"fct_ohlcv_{interval}", market, symbols, first, stop)
        out = dict(held.items())
    out = {s: b for s, b in out.items() if len(np.asarray(b["close"]))}
    if not out:
        where = "in --file" if files else f"in marts.fct_ohlcv_{interval} (run `fks demo` or materialize the marts)"
        raise BadInputError(f"no bars for {', '.join(symbols)} {timerange or ''} {where}")
    return out, interval


def _file_bars(
    files: Sequence[Path], interval: str | None, start: datetime | None, end: datetime | None
) -> tuple[dict[str, Bars], str]:
    import polars as pl

    from fks_pipelines.lib.sources.files import read_kline_file

    frame = pl.concat([read_kline_file(f).frame for f in files], how="diagonal_relaxed")
    frame = frame.unique(["symbol", "open_time"]).sort("symbol", "open_time")
    intervals = frame["interval"].unique().to_list()
    if len(intervals) > 1 or (interval and intervals != [interval]):
        raise BadInputError(f"--file: bars of {', '.join(intervals)}; give files of one interval (--interval)")
    interval = intervals[0] if intervals else interval
    if start:
        frame = frame.filter(pl.col("open_time") >= start)
    if end:
        frame = frame.filter(pl.col("open_time") < end)
    out: dict[str, Bars] = {}
    for symbol in frame["symbol"].unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("symbol") == symbol)
        columns = {c: part[c].cast(pl.Float64).to_numpy() for c in ("open", "high", "low", "close", "volume")}
        out[symbol] = columns | {"bucket": part["open_time"].to_numpy()}
    return out, str(interval or "1h")


def parse_params(strategy: Strategy, pairs: Sequence[str]) -> dict:
    """--params k=v: the strategy's defaults with each named parameter replaced, typed like its GRID values."""
    params = dict(strategy.defaults)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in strategy.grid:
            raise BadInputError(f"--params: {pair!r} is not NAME=VALUE with NAME in {', '.join(strategy.grid)}")
        params[key] = _param_value(key, raw, type(strategy.grid[key][0]))
    if not strategy.valid(params):
        raise BadInputError(f"--params: {params} is not a valid combination for {strategy.name}")
    return params


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a finite number"}


def _param_value(key: str, raw: str, kind: type) -> Any:
    """One --params value typed like the strategy's GRID values: bool from true/false, yes/no, on/off, 1/0
    (any case); int from an integral number; float finite; a bad one: BadInputError naming it."""
    try:
        if kind is bool:
            return _BOOLS[raw.strip().lower()]
        if kind is int and float(raw).is_integer():
            return int(float(raw))
        value = kind(raw)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(raw)
        return value
    except (KeyError, ValueError):
        raise BadInputError(f"--params: {key}={raw!r} is not {_KIND_NAMES.get(kind, kind.__name__)}") from None


def backtest_config(
    interval: str,
    fee: float,
    workers: int = 1,
    days_per_year: float = 365.0,
    conventions: Conventions | None = None,
) -> BacktestConfig:
    """The configuration of a run on ``interval`` bars (1m, 1h, 1d: pandas' frequency for annualising)."""
    return BacktestConfig(
        fees=fee,
        freq=interval.replace("m", "min") if interval.endswith("m") else interval,
        workers=workers,
        days_per_year=days_per_year,
        conventions=conventions or DEFAULT_CONVENTIONS,
    )


def best_parameters(
    symbol: str,
    bars: Bars,
    strategy: Strategy,
    config: BacktestConfig,
    *,
    objective: str,
    method: str,
    trials: int,
    walk_forward: bool,
    in_sample: int,
    out_of_sample: int,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """The best parameters of ``strategy`` on one symbol's bars by ``objective``: over the whole grid (``progress``
    gets the parameter sets done so far), by Optuna (``progress`` gets the trials at the end), or walked forward
    (the last window's in-sample choice, with the chained out-of-sample return). The row as
    :func:`~fks_pipelines.lib.quant.backtest.best` returns it (params, score, and the metrics)."""
    from fks_pipelines.lib.quant.backtest import best, run_sweep
    from fks_pipelines.lib.quant.optimize import optimize_with_optuna
    from fks_pipelines.lib.quant.walk_forward import Search
    from fks_pipelines.lib.quant.walk_forward import walk_forward as walk

    grid = strategy.parameter_sets()
    if walk_forward:
        windows, _ = walk(
            bars,
            strategy,
            grid,
            in_sample=in_sample,
            out_of_sample=out_of_sample,
            objective=objective,
            config=config,
            search=Search(method, trials),
        )
        if windows.height == 0:
            raise BadInputError(
                f"{symbol}: {len(bars['close'])} bars are too few for one {in_sample}+{out_of_sample} window"
            )
        return {
            "params": windows["params"][-1],
            "score": float(windows["in_sample_score"][-1]),
            "oos_total_return": float((1 + windows["oos_total_return"]).product() - 1),
        }
    if method == "optuna":
        chosen, _ = optimize_with_optuna(bars, strategy, objective=objective, n_trials=trials, config=config)
        if progress:
            progress(trials)
        return chosen
    on_chunk = (lambda done, _total: progress(done)) if progress else None
    return best(run_sweep(bars, strategy, grid, config, on_chunk), objective)

"""Vectorised backtests with vectorbt: a strategy's whole parameter grid on one symbol's bars.

Execution model: a signal computed on bar t's close fills at bar t+1's open (``price=open``), all cash in
(long-only spot by default), Binance spot taker fee (0.1%) and slippage on every fill, valued at each close.
The grid runs in chunks of ``chunk_size`` parameter sets so memory stays bounded whatever the grid size;
vectorbt's numba kernels are compiled once and cached on disk. With ``workers`` > 1 the chunks run in forked
worker processes (each holds one chunk and its own bounded indicator cache at a time); every chunk is computed
exactly as in the serial run, so the results are identical.

Stops (a strategy file's ``STOPS`` or stop parameters in its ``GRID``, :class:`StopColumns`) are vectorbt's own
stop orders, checked on every bar after the entry bar against that bar's open, high and low: a stop-loss (or
trailing stop) at ``entry fill price x (1 - stop_loss)`` (a trailing one from the highest high since the bar
after the entry instead of the entry price, raised after each bar's check), a take-profit at ``entry fill price
x (1 + take_profit)``. A bar that opens through a level fills at its open, else at the level; slippage and fees
as on any fill (``StopExitPrice.StopMarket``). When one bar touches both, the stop-loss is taken (the worse fill,
as backtesting.py). A signal's market order at a bar's open fills first: on that bar a stop can only fill through
the open itself (:func:`stop_bars`). Without stops the simulation is the one it always was (vectorbt's
``use_stops`` off). docs/strategies.md, "Stops"; benchmarks/backtest.py ``--stops`` compares with backtesting.py.
"""

from __future__ import annotations

import functools
import inspect
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
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
class Conventions:
    """How the metrics count where platforms differ (docs/strategies.md, "Metrics and their conventions"). The
    defaults are this platform's; each alternative is the convention another tool uses.

    - ``open_trades``: ``"count"`` a trade still open at the end, marked at the last close, in the trade
      statistics (trades, win rate, profit factor, expectancy, duration); ``"exclude"`` it (backtesting.py
      without ``finalize_trades``). The equity (return, Sharpe, drawdown) always marks it at the last close.
    - ``profit_factor``: ``"pnl"`` gross profit / gross loss of trade PnL, ``inf`` with no loss; ``"returns"``
      the same over trade returns, NaN with no loss (backtesting.py).
    - ``exposure``: ``"exclude_exit_bar"`` bars that end holding a position; ``"include_exit_bar"`` also the
      bar whose open sells it (entry bar to exit bar inclusive, as backtesting.py).
    - ``atr_first_bar``: ``"high_low"`` bar 0's true range is high - low; ``"talib"`` it is undefined and the
      average starts one bar later (TA-Lib) (``indicators.atr``)."""

    open_trades: str = "count"
    profit_factor: str = "pnl"
    exposure: str = "exclude_exit_bar"
    atr_first_bar: str = "high_low"

    CHOICES = {
        "open_trades": ("count", "exclude"),
        "profit_factor": ("pnl", "returns"),
        "exposure": ("exclude_exit_bar", "include_exit_bar"),
        "atr_first_bar": ("high_low", "talib"),
    }

    def __post_init__(self) -> None:
        for name, choices in self.CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")


DEFAULT_CONVENTIONS = Conventions()


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
    conventions: Conventions = DEFAULT_CONVENTIONS  # how the metrics count where platforms differ


@dataclass(frozen=True)
class StopColumns:
    """The stops of each simulated column (parameter set): ``sl_stop`` and ``tp_stop`` as fractions of the entry
    fill price (NaN: none), ``sl_trail`` whether the stop-loss trails the highest high (a trailing stop). As
    vectorbt's ``sl_stop``, ``tp_stop`` and ``sl_trail`` take them, one row broadcast over the bars."""

    sl_stop: np.ndarray
    tp_stop: np.ndarray
    sl_trail: np.ndarray

    @classmethod
    def of(cls, stops: Sequence[Mapping[str, float]]) -> StopColumns | None:
        """From each column's stops (``Strategy.stops_for``); None when no column has one (no stop checks)."""
        if not any(stops):
            return None
        nan = float("nan")
        loss = [s.get("stop_loss", s.get("trailing_stop", nan)) for s in stops]
        return cls(
            np.asarray([loss], dtype=np.float64),
            np.asarray([[s.get("take_profit", nan) for s in stops]], dtype=np.float64),
            np.asarray([["trailing_stop" in s for s in stops]], dtype=bool),
        )

    def column(self, j: int) -> dict[str, float]:
        """Column ``j``'s stops as ``Strategy.stops_for`` gives them."""
        out = {}
        if not np.isnan(self.sl_stop[0, j]):
            out["trailing_stop" if self.sl_trail[0, j] else "stop_loss"] = float(self.sl_stop[0, j])
        if not np.isnan(self.tp_stop[0, j]):
            out["take_profit"] = float(self.tp_stop[0, j])
        return out


def stop_columns(strategy: Strategy, parameter_sets: Sequence[Mapping]) -> StopColumns | None:
    """The stops of each parameter set of ``strategy``; None for a strategy without stops."""
    if not strategy.has_stops:
        return None
    return StopColumns.of([strategy.stops_for(p) for p in parameter_sets])


def _stop_prices():
    """How stop orders are priced: the levels from the entry's fill price (slippage included), the exit a market
    order at the level (or the open, on a gap) with slippage and fees."""
    from vectorbt.portfolio.enums import StopEntryPrice, StopExitPrice

    return StopEntryPrice.FillPrice, StopExitPrice.StopMarket


def _ohlc_column(bars: Bars, name: str) -> np.ndarray:
    """``bars[name]`` as a float64 column; NaN when the bars lack it (vectorbt then bounds the bar by its open
    and close)."""
    if name not in bars:
        return np.full((len(bars["close"]), 1), np.nan)
    return np.ascontiguousarray(bars[name], dtype=np.float64)[:, None]


def stop_bars(
    bars: Bars, entries: np.ndarray, exits: np.ndarray, allow_shorts: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(open, high, low) as vectorbt's stop checks read them, one column per signal column: on a bar whose open
    fills a signal that closes the position (an exit; with shorts, also an entry), the bar's range is its open.
    vectorbt checks stops before the bar's signal; the market order at the open comes first in fact (and in
    backtesting.py), so the stop may only fill there when the open itself is through it, at the open, the price
    the signal gets too. Takes the signals as decided (bar t), acted on at bar t+1."""
    acted_entries, acted_exits = next_bar(np.asarray(entries, dtype=bool)), next_bar(np.asarray(exits, dtype=bool))
    acts = acted_entries ^ acted_exits if allow_shorts else acted_exits & ~acted_entries
    open_ = _ohlc_column(bars, "open")
    return (
        open_,
        np.where(acts, open_, _ohlc_column(bars, "high")),
        np.where(acts, open_, _ohlc_column(bars, "low")),
    )


def next_bar(signals: np.ndarray) -> np.ndarray:
    """Signals moved one bar later: decided on bar t's close, acted on at bar t+1's open."""
    out = np.zeros_like(signals)
    out[1:] = signals[:-1]
    return out


def portfolio(
    bars: Bars, entries: np.ndarray, exits: np.ndarray, config: BacktestConfig, stops: StopColumns | None = None
):
    """vectorbt's Portfolio of these signals (one column per parameter set), with ``stops`` when given."""
    import vectorbt as vbt

    direction = "both" if config.allow_shorts else "longonly"
    stop_kwargs = {} if stops is None else _stop_arguments(bars, entries, exits, config, stops)
    with _portfolio_on_the_cached_kernel():
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
            **stop_kwargs,
        )


@njit(cache=True)
def _bar_metrics_nb(idx, col, side, size, price, fees, col_start, close, init_cash, exit_bar_exposed):
    """Per column, one pass over the bars: replay the column's orders (sorted by bar) into cash and units,
    value the book at each close, and reduce on the fly. Returns (final value, mean return, std of returns
    (ddof 1), downside deviation, max drawdown, longest drawdown in bars, bars exposed: holding at the close,
    or with ``exit_bar_exposed`` also holding at the open of a bar with an order). The value series is
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
            held_at_open, traded = units != 0.0, o < end and idx[o] == t
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
            if units != 0.0 or (exit_bar_exposed and traded and held_at_open):
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


def _trade_metrics(trades: np.ndarray, k: int, conventions: Conventions = DEFAULT_CONVENTIONS) -> dict[str, np.ndarray]:
    """vectorbt's trade statistics (``pf.trades``: exit trades, open ones included) from its records, per
    column: counts and sums by ``np.bincount`` instead of one mapped array per statistic. ``conventions``:
    open trades left out, and the profit factor over returns (see :class:`Conventions`)."""
    if conventions.open_trades == "exclude":
        trades = trades[trades["status"] != 0]  # 0: open
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
        if conventions.profit_factor == "returns":
            returns = trades["return"]
            gained, given = per_col(returns, returns > 0), per_col(returns, returns < 0)
            profit_factor = np.where(has & (given < 0), gained / np.abs(given), np.nan)
        else:
            profit_factor = np.where(has, won / np.abs(lost), np.nan)
        return {
            "win_rate": win_rate,
            "profit_factor": profit_factor,
            "expectancy": np.where(has, win_rate * avg_win - loss_rate * np.abs(avg_loss), np.nan),
            "trades": count,
            "avg_trade_duration_bars": np.where(has, per_col(duration.astype(float)) / count, np.nan),
        }


@dataclass(frozen=True)
class Simulation:
    """What the metrics need from a vectorbt simulation of ``k`` columns: its order and exit-trade record
    arrays (vectorbt's own dtypes) and each column's starting cash."""

    order_records: np.ndarray
    trade_records: np.ndarray
    init_cash: np.ndarray
    n_columns: int


@functools.cache
def _cached_from_signals_kernel():
    """vectorbt's ``simulate_from_signals_nb``, compiled with ``cache=True``: vectorbt declares it with a bare
    ``@njit``, so every process (a test session, each sweep worker, each Dagster run) compiled it again, 10-40 s
    on 2 cores; the same Python function under ``cache=True`` is compiled once and then loaded from numba's
    on-disk cache (beside vectorbt's own cached kernels, or numba's user cache when that folder is read-only)."""
    from vectorbt.portfolio.nb import simulate_from_signals_nb

    return njit(cache=True)(simulate_from_signals_nb.py_func)


def simulate_from_signals(*args, **kwargs):
    """``vectorbt.portfolio.dispatch.simulate_from_signals`` (same arguments, same records) on the cached kernel;
    with a reject probability (random, seeded by vectorbt) or the Rust engine configured: vectorbt's own path."""
    from vectorbt.portfolio import dispatch

    return _simulate_from_signals(dispatch.simulate_from_signals, *args, **kwargs)


def _simulate_from_signals(vectorbts: Callable, *args, **kwargs):
    from vectorbt._settings import settings

    bound = inspect.signature(vectorbts).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    seed, engine = arguments.pop("seed"), arguments.pop("engine")
    if np.any(np.asarray(arguments["reject_prob"]) > 0) or (engine or settings["engine"]) == "rust":
        return vectorbts(*args, **kwargs)
    del seed  # used only with a reject probability
    return _cached_from_signals_kernel()(**arguments)


def _stop_arguments(
    bars: Bars, entries: np.ndarray, exits: np.ndarray, config: BacktestConfig, stops: StopColumns
) -> dict:
    """vectorbt's stop arguments for ``stops``: the levels per column, the prices they are measured from and fill
    at (:func:`_stop_prices`), and the bars' ranges a signal at the open collapses (:func:`stop_bars`)."""
    entry_price, exit_price = _stop_prices()
    open_, high, low = stop_bars(bars, entries, exits, config.allow_shorts)
    return {
        "open": open_,
        "high": high,
        "low": low,
        "sl_stop": stops.sl_stop,
        "sl_trail": stops.sl_trail,
        "tp_stop": stops.tp_stop,
        "stop_entry_price": entry_price,
        "stop_exit_price": exit_price,
    }


@contextmanager
def _portfolio_on_the_cached_kernel() -> Iterator[None]:
    """While vectorbt builds a Portfolio here, its ``dispatch.simulate_from_signals`` runs on the cached kernel
    (:func:`simulate_from_signals`): otherwise each process (each ``fks backtest``, each Dagster run walking the
    strategy choice) compiles vectorbt's bare-``@njit`` kernel again, 10-40 s on 2 cores. Restored on exit."""
    from vectorbt.portfolio import dispatch

    vectorbts = dispatch.simulate_from_signals
    dispatch.simulate_from_signals = functools.partial(_simulate_from_signals, vectorbts)
    try:
        yield
    finally:
        dispatch.simulate_from_signals = vectorbts


def simulate(
    bars: Bars, entries: np.ndarray, exits: np.ndarray, config: BacktestConfig, stops: StopColumns | None = None
) -> Simulation:
    """The records ``portfolio(bars, entries, exits, config, stops)`` would hold, from the same vectorbt kernels
    (``simulate_from_signals``, then ``get_exit_trades``) with the arguments ``Portfolio.from_signals`` passes
    them, but without building the Portfolio: its pandas wrappers copy the close price out to bars x columns
    several times, a third of a sweep's time. A test checks the records equal the Portfolio's, bit for bit."""
    from vectorbt._settings import settings
    from vectorbt.portfolio import dispatch, enums
    from vectorbt.portfolio import nb as pnb
    from vectorbt.records import dispatch as rdispatch
    from vectorbt.utils.enum_ import map_enum_fields

    cfg = settings["portfolio"]
    entries = np.asarray(entries, dtype=bool)
    n, k = entries.shape
    close = np.ascontiguousarray(bars["close"], dtype=np.float64)[:, None]  # read flexibly: one column for all
    price = np.ascontiguousarray(bars["open"], dtype=np.float64)[:, None]
    shape = (n, k)
    group_lens = np.ones(k, dtype=np.int64)
    init_cash = np.full(k, float(config.init_cash))
    call_seq = pnb.build_call_seq(shape, group_lens, call_seq_type=map_enum_fields(cfg["call_seq"], enums.CallSeqType))
    direction = enums.Direction.Both if config.allow_shorts else enums.Direction.LongOnly

    def setting(name: str, enum=None):
        value = cfg[name] if enum is None else map_enum_fields(cfg[name], enum)
        return np.asarray(value)

    nan = np.asarray(np.nan)
    stop_arguments = {
        "open": nan,
        "high": nan,
        "low": nan,
        "sl_stop": setting("sl_stop"),
        "sl_trail": setting("sl_trail"),
        "tp_stop": setting("tp_stop"),
        "stop_entry_price": setting("stop_entry_price", enums.StopEntryPrice),
        "stop_exit_price": setting("stop_exit_price", enums.StopExitPrice),
        "use_stops": bool(cfg["use_stops"]) if cfg["use_stops"] is not None else False,
    }
    if stops is not None:
        stop_arguments = _stop_arguments(bars, entries, exits, config, stops)
        stop_arguments |= {
            "stop_entry_price": np.asarray(stop_arguments["stop_entry_price"]),
            "stop_exit_price": np.asarray(stop_arguments["stop_exit_price"]),
            "use_stops": True,
        }

    orders, _ = simulate_from_signals(
        shape,
        group_lens,
        init_cash,
        call_seq,
        entries=next_bar(entries),
        exits=next_bar(np.asarray(exits, dtype=bool)),
        direction=np.asarray(direction),
        size=setting("size"),
        price=price,
        size_type=setting("size_type", enums.SizeType),
        fees=np.asarray(config.fees),
        fixed_fees=setting("fixed_fees"),
        slippage=np.asarray(config.slippage),
        min_size=setting("min_size"),
        max_size=setting("max_size"),
        size_granularity=setting("size_granularity"),
        reject_prob=setting("reject_prob"),
        lock_cash=setting("lock_cash"),
        allow_partial=setting("allow_partial"),
        raise_reject=setting("raise_reject"),
        log=setting("log"),
        accumulate=np.asarray(map_enum_fields(cfg["accumulate"], enums.AccumulationMode, ignore_type=(int, bool))),
        upon_long_conflict=setting("upon_long_conflict", enums.ConflictMode),
        upon_short_conflict=setting("upon_short_conflict", enums.ConflictMode),
        upon_dir_conflict=setting("upon_dir_conflict", enums.DirectionConflictMode),
        upon_opposite_entry=setting("upon_opposite_entry", enums.OppositeEntryMode),
        val_price=setting("val_price"),
        close=close,
        upon_stop_exit=setting("upon_stop_exit", enums.StopExitMode),
        upon_stop_update=setting("upon_stop_update", enums.StopUpdateMode),
        **stop_arguments,
        auto_call_seq=False,
        ffill_val_price=cfg["ffill_val_price"],
        update_value=cfg["update_value"],
        max_orders=n * k,
        max_logs=1,
        init_temp_records=cfg["init_temp_records"],
        flex_2d=True,
        seed=cfg["seed"],
    )
    col_map = rdispatch.col_map(orders["col"], k)
    trades = dispatch.get_exit_trades(orders, np.broadcast_to(close, shape), col_map)
    return Simulation(orders, trades, init_cash, k)


OPEN_AT_END = "open at end (marked at the last close)"
EXIT_REASONS = {"stop_loss": "stop loss", "trailing_stop": "trailing stop", "take_profit": "take profit"}


def exit_reasons(
    bars: Bars,
    trade_records: np.ndarray,
    stops: Mapping[str, float],
    entries: np.ndarray,
    exits: np.ndarray,
    allow_shorts: bool = False,
) -> list[str]:
    """Why each exit trade of one column (its signals ``entries``, ``exits``) ended: ``OPEN_AT_END``, ``"exit
    signal"`` or the stop that filled it (``EXIT_REASONS``). vectorbt's open-source records do not keep it, so
    each stop exit is found by replaying the kernel's own test on the exit bar with the same arithmetic (a stop is
    checked before the bar's signal, on the bars of :func:`stop_bars`; the stop-loss before the take-profit; a
    trailing stop's reference is the best price since the bar after the entry), which makes it exact."""
    close = np.asarray(bars["close"], dtype=np.float64)
    opens, highs, lows = stop_bars(bars, np.asarray(entries)[:, None], np.asarray(exits)[:, None], allow_shorts)
    open_ = np.where(np.isnan(opens[:, 0]), close, opens[:, 0])
    high = np.where(np.isnan(highs[:, 0]), np.maximum(open_, close), highs[:, 0])
    low = np.where(np.isnan(lows[:, 0]), np.minimum(open_, close), lows[:, 0])
    reasons = []
    for record in trade_records:
        if int(record["status"]) == 0:
            reasons.append(OPEN_AT_END)
            continue
        entry, i, price = int(record["entry_idx"]), int(record["exit_idx"]), float(record["entry_price"])
        long = int(record["direction"]) == 0
        bar = (open_[i], low[i], high[i])
        reason = "exit signal"
        loss_key = "trailing_stop" if "trailing_stop" in stops else "stop_loss"
        if loss_key in stops and i > entry:
            reference = price
            if loss_key == "trailing_stop" and i > entry + 1:
                seen = high[entry + 1 : i] if long else low[entry + 1 : i]
                reference = max(price, float(seen.max())) if long else min(price, float(seen.min()))
            level = reference * (1 - stops[loss_key]) if long else reference * (1 + stops[loss_key])
            if (long and (bar[0] <= level or bar[1] <= level <= bar[2])) or (
                not long and (level <= bar[0] or bar[1] <= level <= bar[2])
            ):
                reason = EXIT_REASONS[loss_key]
        if reason == "exit signal" and "take_profit" in stops and i > entry:
            level = price * (1 + stops["take_profit"]) if long else price * (1 - stops["take_profit"])
            if (long and (level <= bar[0] or bar[1] <= level <= bar[2])) or (
                not long and (bar[0] <= level or bar[1] <= level <= bar[2])
            ):
                reason = EXIT_REASONS["take_profit"]
        reasons.append(reason)
    return reasons


def portfolio_metrics(
    pf, bars: Bars, days_per_year: float = 365.0, conventions: Conventions = DEFAULT_CONVENTIONS
) -> dict[str, np.ndarray]:
    """The metrics of every column of a vectorbt portfolio, as arrays (one value per parameter set)."""
    k = pf.wrapper.shape_2d[1]
    init = np.ascontiguousarray(np.broadcast_to(np.asarray(pf.init_cash, dtype=float).reshape(-1), (k,)))
    simulation = Simulation(pf.order_records, pf.trades.values, init, k)
    return simulation_metrics(simulation, bars, pf.wrapper.freq.total_seconds(), days_per_year, conventions)


def simulation_metrics(
    simulation: Simulation,
    bars: Bars,
    bar_seconds: float,
    days_per_year: float = 365.0,
    conventions: Conventions = DEFAULT_CONVENTIONS,
) -> dict[str, np.ndarray]:
    """The metrics of every column of a simulation, as arrays (one value per parameter set).

    Computed from vectorbt's order and trade records in one numba pass per column (vectorbt's accessors
    would each build and copy bars x columns DataFrames); the formulas are vectorbt's own, and the tests
    compare every metric with its accessors.
    """
    ann_factor = days_per_year * 86400 / bar_seconds
    close = np.ascontiguousarray(bars["close"], dtype=float)
    n, k = len(close), simulation.n_columns
    init = simulation.init_cash
    orders = simulation.order_records
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
        conventions.exposure == "include_exit_bar",
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
        **_trade_metrics(simulation.trade_records, k, conventions),
        "exposure": exposed / n,
        "fees_paid": np.bincount(orders["col"], weights=orders["fees"], minlength=k),
        "buy_and_hold_return": np.full(k, close[-1] / close[0] - 1.0),
    }


def bar_seconds(config: BacktestConfig) -> float:
    """The bar length in seconds, parsed as vectorbt parses ``freq``."""
    from vectorbt.utils.datetime_ import freq_to_timedelta

    return float(freq_to_timedelta(config.freq).total_seconds())


def effective_chunk_size(n_bars: int, config: BacktestConfig) -> int:
    """Memory grows with bars x parameter sets per vectorbt call (it keeps ~20 such float arrays alive):
    long histories get narrower chunks, so the peak stays about the same whatever the history length."""
    return max(1, min(config.chunk_size, config.chunk_cells // max(1, n_bars)))


def _chunk_metrics(bars: SweepBars, strategy: Strategy, chunk: list[dict], config: BacktestConfig) -> dict:
    entries, exits = signal_matrix(strategy, bars, chunk)
    simulation = simulate(bars, entries, exits, config, stop_columns(strategy, chunk))
    metrics = simulation_metrics(simulation, bars, bar_seconds(config), config.days_per_year, config.conventions)
    return {name: np.asarray(metrics[name], dtype=float) for name in METRICS}


# What a worker of a :class:`SweepPool` serves: the histories, the strategy, the config and its indicator cache.
# Set in each worker process by the pool's initializer (``_start_worker``), never in the parent: a fork-context
# pool's initargs reach its workers by fork (copy-on-write), never pickled, so a user strategy's closure and the
# histories cost no copy. A per-process global is how a process pool's workers hold state between tasks.
_WORKER: dict | None = None
SWEEP_CACHE_CELLS = 40_000_000  # indicator floats a sweep may keep (split between the workers of a pool)


def _forked_chunk(task: tuple[str, int, int, list[dict]]) -> dict:
    """One chunk of the sweep over ``histories[key][start:end]``, in a worker. The worker keeps the indicator
    cache of the span it last swept (a sweep sends a span's chunks together), so an indicator is computed
    once per span and worker."""
    assert _WORKER is not None, "runs in a SweepPool worker, which its initializer set up"
    key, start, end, chunk = task
    span = (key, start, end)
    if _WORKER["span"] != span:
        bars = {column: values[start:end] for column, values in _WORKER["histories"][key].items()}
        _WORKER["bars"], _WORKER["span"] = SweepBars(bars, max_cells=_WORKER["max_cells"]), span
    return _chunk_metrics(_WORKER["bars"], _WORKER["strategy"], chunk, _WORKER["config"])


def _start_worker(sweep: dict) -> None:
    """A SweepPool worker's initializer: what it serves, with an empty indicator cache."""
    global _WORKER
    _WORKER = sweep | {"span": None, "bars": None}


def sweep_workers(config: BacktestConfig, n_chunks: int, cells: int | None = None) -> int:
    """Processes for ``n_chunks`` chunks of ``cells`` bars x parameter sets in all: ``config.workers`` (0: the
    CPU cores this process may use), never more than there are chunks; 1 for a sweep too small to repay forking."""
    if cells is not None and cells < config.parallel_cells:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(config.workers or cores, n_chunks))


class SweepPool:
    """Worker processes forked once and reused by every sweep over the histories they were forked with: a
    walk-forward's windows (slices of one history) or several symbols' histories. Forking a process that holds
    vectorbt costs about 0.1 s, so a pool per window or per symbol would pay it again and again.

    Each worker computes the indicators of the span it sweeps once and keeps them while it gets that span's
    chunks; warming them in the parent before forking would cost more than it saves (the MA grid's 52 SMAs
    over 43,200 bars take ~20 ms, computing its 397 signal pairs to find them ~100 ms, serially). Every chunk
    is computed exactly as the serial sweep computes it, so the results are identical (a test checks it)."""

    def __init__(
        self,
        histories: Mapping[str, Bars],
        strategy: Strategy,
        config: BacktestConfig,
        workers: int,
    ):
        self.histories, self.strategy, self.config, self.workers = histories, strategy, config, workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> SweepPool:
        if self.workers > 1:
            max_cells = SWEEP_CACHE_CELLS // self.workers  # each worker gets its share of the serial bound
            sweep = {
                "histories": self.histories,
                "strategy": self.strategy,
                "config": self.config,
                "max_cells": max_cells,
            }
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker,
                initargs=(sweep,),
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def sweep(
        self,
        key: str,
        start: int,
        end: int,
        parameter_sets: list[dict],
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> pl.DataFrame:
        """``run_sweep`` on ``histories[key][start:end]``, its chunks on the pool's workers (in-process when
        the pool has one worker)."""
        bars = {column: values[start:end] for column, values in self.histories[key].items()}
        if self._pool is None:
            return _serial_sweep(bars, self.strategy, parameter_sets, self.config, on_chunk)
        parts = list(chunks(parameter_sets, effective_chunk_size(end - start, self.config)))
        results = self._pool.map(_forked_chunk, [(key, start, end, chunk) for chunk in parts])  # in order
        return _sweep_frame(self.strategy, parameter_sets, zip(parts, results, strict=True), on_chunk)


def _sweep_frame(
    strategy: Strategy,
    parameter_sets: list[dict],
    parts: Iterable[tuple[list[dict], dict]],
    on_chunk: Callable[[int, int], None] | None,
) -> pl.DataFrame:
    rows: dict[str, list] = {m: [] for m in METRICS}
    done = 0
    for chunk, metrics in parts:
        for name in METRICS:
            rows[name] += [float(v) for v in metrics[name]]
        done += len(chunk)
        if on_chunk:
            on_chunk(done, len(parameter_sets))
    frame = pl.DataFrame({"strategy": [strategy.name] * len(parameter_sets), **rows})
    return frame.with_columns(pl.Series("params", [dict(p) for p in parameter_sets], dtype=pl.Object)).select(
        "strategy", "params", *METRICS
    )


def _serial_sweep(
    bars: Bars,
    strategy: Strategy,
    parameter_sets: list[dict],
    config: BacktestConfig,
    on_chunk: Callable[[int, int], None] | None,
) -> pl.DataFrame:
    sweep_bars = SweepBars(bars)  # each indicator once per sweep, not once per parameter set
    parts = chunks(parameter_sets, effective_chunk_size(len(bars["close"]), config))
    results = ((chunk, _chunk_metrics(sweep_bars, strategy, chunk, config)) for chunk in parts)
    return _sweep_frame(strategy, parameter_sets, results, on_chunk)


def run_sweep(
    bars: Bars,
    strategy: Strategy,
    parameter_sets: list[dict],
    config: BacktestConfig = BacktestConfig(),
    on_chunk: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """One row per parameter set: the parameters (as a JSON-able dict column) and every metric. With
    ``config.workers`` != 1 on a large enough sweep, the chunks run on workers forked for this sweep (several
    sweeps over one history share a :class:`SweepPool` instead)."""
    n_chunks = len(list(chunks(parameter_sets, effective_chunk_size(len(bars["close"]), config))))
    workers = sweep_workers(config, n_chunks, len(bars["close"]) * len(parameter_sets))
    if workers == 1:
        return _serial_sweep(bars, strategy, parameter_sets, config, on_chunk)
    n = len(bars["close"])
    with SweepPool({"": bars}, strategy, config, workers) as one_off:
        return one_off.sweep("", 0, n, parameter_sets, on_chunk)


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

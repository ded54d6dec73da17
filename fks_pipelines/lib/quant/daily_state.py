"""Point-in-time state at the end of each UTC day: every indicator and each strategy's entry/exit on the day's last
hourly bar, and the chosen strategy's position at that close, each from the bars up to it only. Strategies use
their latest walk-forward choice decided before the day's end (textbook defaults otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from fks_pipelines.lib.db import analytics
from fks_pipelines.lib.db.marts import bars_between, read_bars
from fks_pipelines.lib.quant.selection import indicator_state, signal_state
from fks_pipelines.lib.quant.state import CASH, position_state
from fks_pipelines.lib.quant.strategies import Bars
from fks_pipelines.lib.quant.strategy_files import Registry, StrategyFileError

LOOKBACK_DAYS = 60  # each day's state sees the hourly bars of its last 60 days


def daily_signals(
    conn: psycopg.Connection,
    market: str,
    symbols: list[str],
    start: datetime,
    end: datetime,
    failed: dict[str, str],
    strategies: Registry,
) -> tuple[list[analytics.Signal], list[analytics.StrategyStateRow]]:
    """The signals and the strategy state of every day in [start, end) per symbol with bars that day, for the
    loaded ``strategies``. A user strategy that fails (raising, exiting or hanging in signals) is left out and
    recorded in ``failed`` by name."""
    rows, states = [], []
    # One read for the whole window (each day then sees its own 60 days up to its end): not one query per day.
    every_bar = read_bars(conn, "fct_ohlcv_1h", market, symbols, start - timedelta(days=LOOKBACK_DAYS - 1), end)
    day = start
    while day < end:
        day_end = day + timedelta(days=1)
        bars_by_symbol = bars_between(every_bar, day_end - timedelta(days=LOOKBACK_DAYS), day_end)
        # Every symbol's latest choice decided before the day's end, in one query (not one per symbol).
        choices = analytics.latest_choice_records(conn, market, symbols, before=day_end)
        for symbol, bars in bars_by_symbol.items():
            if len(bars["close"]) == 0:
                continue
            chosen = choices.get(symbol)
            params = {name: (strategy, dict(strategy.defaults)) for name, strategy in strategies.items()}
            if chosen and chosen[0] in strategies:  # "cash" (hold nothing) changes no strategy's parameters
                params[chosen[0]] = (strategies[chosen[0]], chosen[1])
            state = indicator_state(bars)
            as_of = bars["bucket"][-1].astype("datetime64[us]").item().replace(tzinfo=UTC)
            rows.append(analytics.Signal(day, symbol, as_of, state, signal_state(bars, params, failed)))
            states.append(strategy_state(symbol, day, as_of, bars, chosen, failed, strategies))
        day = day_end
    return rows, states


def strategy_state(
    symbol: str,
    day: datetime,
    as_of: datetime,
    bars: Bars,
    choice: tuple[str, dict, datetime] | None,
    failed: dict[str, str],
    strategies: Registry,
) -> analytics.StrategyStateRow:
    """The chosen strategy's position at the close of ``day``: ``choice`` (the latest decided before the day's end,
    from :func:`analytics.latest_choice_records`) walked over ``bars``. A 'cash' choice, or no choice yet, is cash:
    flat; so is a chosen strategy that fails (recorded in ``failed`` by name)."""
    name, params, decided = choice if choice else (CASH, {}, None)
    strategy = None if name in failed else strategies.get(name)
    try:
        held = position_state(bars, strategy, params)
    except StrategyFileError as exc:
        failed[name] = str(exc)
        held = position_state(bars, None, params)
    return analytics.StrategyStateRow(
        day, symbol, as_of, name, params, decided, held.position, held.since, held.entry_price, held.unrealised_pnl
    )

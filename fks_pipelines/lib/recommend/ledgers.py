"""The ledgers that follow the daily recommendation, filled by the one replay (:mod:`fks_pipelines.lib.portfolio.
replay`): every paper account follows the recommendation it was given (``portfolio.trades``, ids ``paper-*``), and,
when an LLM decides, the rules engine's shadow ledger beside each paper account follows the rules engine's
recommendation from the same inputs (``recommendations.shadow_fills``). Both fill by the paper rules: at the next
UTC day's open, with fees and slippage, only once that open exists. A paper account's positions then carry the
stop-loss and take-profit of their latest recommendation, watched on every hourly bar of the fill day; the shadow
ledger has no levels of its own stored, and trades at the opens only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg

from fks_pipelines.lib.db import recommendations
from fks_pipelines.lib.db.marts import daily_opens, read_bars
from fks_pipelines.lib.db.portfolio import account_states, replace_paper_fills
from fks_pipelines.lib.portfolio.paper import Target
from fks_pipelines.lib.portfolio.replay import FillBars, Ledger, replay_day
from fks_pipelines.lib.portfolio.stops import Bar, Levels
from fks_pipelines.lib.recommend.generate import Generation, shadow_generation
from fks_pipelines.lib.recommend.schema import AccountContext


def fill_bars(conn: psycopg.Connection, day: date, market: str, symbols: list[str]) -> FillBars | None:
    """The prices ``day``'s decisions fill at (the next day's opens) and the fill day's bars the positions' stops
    are watched on (hourly; the day's single bar for a symbol without hourly bars that day), or None while the fill
    day has no bar yet."""
    start = recommendations.decision_time(day)
    opens = daily_opens(conn, market, symbols, start)
    if not opens:
        return None
    end = start + timedelta(days=1)
    hourly, daily = (read_bars(conn, table, market, symbols, start, end) for table in ("fct_ohlcv_1h", "fct_ohlcv_1d"))
    bars, length = {}, {}
    for symbol in symbols:
        if len(hourly[symbol]["open"]):
            bars[symbol] = _bars(hourly[symbol])
        elif len(daily[symbol]["open"]):
            bars[symbol], length[symbol] = _bars(daily[symbol]), timedelta(days=1)
    return FillBars(opens, bars, length)


def _bars(arrays: dict) -> list[Bar]:
    times = arrays["bucket"].astype("datetime64[us]").tolist()
    return [
        Bar(t.replace(tzinfo=UTC), float(o), float(h), float(lo), float(c))
        for t, o, h, lo, c in zip(times, arrays["open"], arrays["high"], arrays["low"], arrays["close"], strict=True)
    ]


def fill_paper_accounts(conn: psycopg.Connection, day: date, market: str, symbols: list[str]) -> int:
    """Fill every paper account's recommendation for ``day`` at the next day's open (nothing when that open does
    not exist yet, or ``day`` has no recommendation); returns the fills written."""
    bars = fill_bars(conn, day, market, symbols)
    rows = recommendations.latest_rows(conn, day)
    if bars is None or not rows:
        return 0
    n = 0
    for filled in replay_day(day, _paper_ledgers(conn, day, market, rows), bars):
        replace_paper_fills(conn, filled.account, day, filled.fills)
        n += len(filled.fills)
    return n


def _paper_ledgers(conn: psycopg.Connection, day: date, market: str, rows: list[dict]) -> Iterator[Ledger]:
    """Every paper account of ``market`` as it stands at ``day``'s decision, with its targets (none: its day's
    fills are made none)."""
    levels = recommendations.position_levels(conn, day)
    for state in account_states(conn, recommendations.decision_time(day)):
        if state.mode != "paper" or state.market != market:
            continue
        targets = [
            Target(r["symbol"], r["action"], r["target_allocation"]) for r in rows if r["account"] == state.account
        ]
        carried = {s: _levels(*levels[(a, s)]) for a, s in levels if a == state.account}
        yield Ledger(state.account, state.cash, state.positions, targets, carried)


def _levels(stop_loss: float | None, take_profit: float | None) -> Levels:
    """The levels as stored; a pair the sizing would never write (a stop at or above the take-profit) keeps the stop."""
    try:
        return Levels(stop_loss, take_profit)
    except ValueError:
        return Levels(stop_loss, None)


def fill_shadow_ledgers(conn: psycopg.Connection, day: date, market: str, symbols: list[str]) -> int:
    """Fill every paper account's shadow recommendation for ``day`` in its shadow ledger, by the paper rules
    (nothing when the next day's open does not exist yet). Returns the fills written."""
    bars = fill_bars(conn, day, market, symbols)
    if bars is None:
        return 0
    n, generator = 0, recommendations.SHADOW_GENERATOR
    for filled in replay_day(day, _shadow_ledgers(conn, day, market, generator), bars):
        recommendations.replace_shadow_fills(conn, filled.account, generator, day, filled.fills)
        n += len(filled.fills)
    return n


def _shadow_ledgers(conn: psycopg.Connection, day: date, market: str, generator: str) -> Iterator[Ledger]:
    """The shadow ledger of ``generator`` beside every paper account of ``market`` that has a shadow recommendation
    for ``day``, as it stands at the decision time."""
    at = recommendations.decision_time(day)
    for state in account_states(conn, at):
        if state.mode != "paper" or state.market != market:
            continue
        targets = [Target(*t) for t in recommendations.shadow_targets(conn, day, state.account, generator)]
        if not targets:
            continue
        held = recommendations.shadow_state(conn, state, at, generator)
        yield Ledger(state.account, held.cash, held.positions, targets)


def shadow_generations(
    conn: psycopg.Connection, account_contexts: list[AccountContext]
) -> list[tuple[Generation, datetime]]:
    """The rules engine's recommendation for each paper account's context (the inputs the LLM just read), sized
    for the account's shadow ledger as it stands at the decision time."""
    out = []
    states = {s.account: s for s in account_states(conn, account_contexts[0].decided_at)} if account_contexts else {}
    for c in account_contexts:
        if states[c.account].mode != "paper":
            continue
        held = recommendations.shadow_state(conn, states[c.account], c.decided_at, recommendations.SHADOW_GENERATOR)
        out.append((shadow_generation(c, held.cash, held.positions), c.decided_at))
    return out

"""The ledgers that follow the daily recommendation, filled by the one replay (:mod:`fks_pipelines.lib.portfolio.
replay`): every paper account follows the recommendation it was given (``portfolio.trades``, ids ``paper-*``), and,
when an LLM decides, the rules engine's shadow ledger beside each paper account follows the rules engine's
recommendation from the same inputs (``recommendations.shadow_fills``). Both fill by the paper rules: at the next
UTC day's open, with fees and slippage, only once that open exists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import psycopg

from fks_pipelines.lib.db import recommendations
from fks_pipelines.lib.db.marts import daily_opens
from fks_pipelines.lib.db.portfolio import account_states, replace_paper_fills
from fks_pipelines.lib.portfolio.paper import Target
from fks_pipelines.lib.portfolio.replay import FillBars, Ledger, replay_day
from fks_pipelines.lib.recommend.generate import Generation, shadow_generation
from fks_pipelines.lib.recommend.schema import AccountContext


def fill_bars(conn: psycopg.Connection, day: date, market: str, symbols: list[str]) -> FillBars | None:
    """The prices ``day``'s decisions fill at (the next day's opens), or None while that day has no bar yet."""
    opens = daily_opens(conn, market, symbols, recommendations.decision_time(day))
    return FillBars(opens) if opens else None


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
    for state in account_states(conn, recommendations.decision_time(day)):
        if state.mode != "paper" or state.market != market:
            continue
        targets = [
            Target(r["symbol"], r["action"], r["target_allocation"]) for r in rows if r["account"] == state.account
        ]
        yield Ledger(state.account, state.cash, state.positions, targets)


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

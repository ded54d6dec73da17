"""The record as documents: every trade of a market's accounts, every position they closed, and every past
recommendation whose outcome is known, assembled from the stores of the portfolio, recommendations and marts
schemas and the pure builders in documents.py.

Point-in-time: :func:`build_record_documents` returns exactly the record documents whose ``as_of`` is at or before
``until``, and reads nothing later: trades executed by ``until``, recommendations decided by ``until`` less 7 days,
and the marts' closes known by ``until``. Built again with the same ``until`` after later trades or prices
arrived, it returns the same documents (same ids).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

import psycopg

from fks_pipelines.lib.db import marts, portfolio, recommendations
from fks_pipelines.lib.portfolio.ledger import Trade
from fks_pipelines.lib.portfolio.stops import reason_of
from fks_pipelines.lib.rag.documents import (
    OUTCOME_DAYS,
    Document,
    position,
    position_episodes,
    recommendation,
    trade,
)

OUTCOME = timedelta(days=OUTCOME_DAYS)


def _exit_within(exits: list[Trade], times: list[datetime], after: datetime, until: datetime) -> Trade | None:
    """The first stop-loss or take-profit fill of ``exits`` (in time order, executed at ``times``) with
    after < executed_at <= until."""
    i = bisect.bisect_right(times, after)
    return exits[i] if i < len(exits) and times[i] <= until else None


def build_record_documents(
    conn: psycopg.Connection, market: str, until: datetime, symbols: Sequence[str] | None = None
) -> list[Document]:
    """Every record document of ``market`` (of ``symbols`` only, when given) whose ``as_of`` <= ``until``: one per
    trade, one per closed position (open ones have no outcome yet) and one per recommendation whose 7-day outcome
    has closed by ``until`` (decided at least 7 days before it, and the marts hold that close) and that asked for a
    trade (a buy or a sell). A hold asks for nothing new: what came of holding is its position's document, and a
    month of near-identical daily holds would crowd every search; holds stay in recommendations.daily and the
    track record."""
    wanted = set(symbols) if symbols is not None else None
    keep = lambda symbol: wanted is None or symbol in wanted  # noqa: E731
    docs: list[Document] = []
    exits: dict[tuple[str, str], list[Trade]] = {}
    for account, trades in portfolio.market_trades(conn, market, until).items():
        trades = [t for t in trades if keep(t.symbol)]
        docs.extend(trade(account, market, t) for t in trades)
        docs.extend(position(e, market) for e in position_episodes(account, trades) if e.closed)
        for t in trades:
            if reason_of(t.trade_id):
                exits.setdefault((account, t.symbol), []).append(t)
    rows = [
        r
        for r in recommendations.decided_recommendations(
            conn, portfolio.accounts_of_market(conn, market), until - OUTCOME
        )
        if keep(r["symbol"]) and r["action"] != "hold"
    ]
    day_of = lambda r: datetime.combine(r["decision_date"], time(), tzinfo=UTC)  # noqa: E731
    returns = marts.forward_returns(
        conn, market, sorted({(r["symbol"], day_of(r)) for r in rows}), (1, OUTCOME_DAYS), known_by=until
    )
    times = {key: [t.executed_at for t in fills] for key, fills in exits.items()}
    for r in rows:
        outcome = returns.get((r["symbol"], day_of(r)), {})
        if OUTCOME_DAYS not in outcome:
            continue  # the close 7 days on is not in the marts (yet)
        key = (r["account"], r["symbol"])
        fill = _exit_within(exits.get(key, []), times.get(key, []), r["decided_at"], r["decided_at"] + OUTCOME)
        docs.append(recommendation(r, market, outcome, fill))
    return docs

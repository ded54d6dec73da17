"""The history the guards read during one run of the daily recommendation (lib/recommend/daily.py), assembled from
the stores: equity at each decision time and recent exits, per account (lib/recommend/guarding.py applies them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import psycopg

from fks_pipelines.lib.db import portfolio, recommendations
from fks_pipelines.lib.db.marts import daily_bars
from fks_pipelines.lib.recommend.guarding import guarding_for, history_of


class GuardBook:
    """The history every account's guards read during one run over days: equity at each decision time, seeded
    once from the ledger before the run's first day (one replay) and extended day by day with each decision's own
    equity; exits read from the ledger per day (a stop fill of the fill day is written before the next decision
    reads it). Point-in-time: a decision's guards see equity up to its own and exits stamped before it."""

    def __init__(self, equity: dict[str, list[tuple[datetime, float]]]):
        self.equity = equity

    @classmethod
    def seed(cls, conn: psycopg.Connection, market: str, symbols: list[str], first_day: date) -> GuardBook:
        start = portfolio.first_deposit(conn)
        if start is None:
            return cls({})
        times = [
            recommendations.decision_time(start.date() + timedelta(days=i))
            for i in range((first_day - start.date()).days)
        ]
        closes: dict[tuple[str, date], float] = {}
        if times:
            bars = daily_bars(conn, market, symbols, times[0] - timedelta(days=1), times[-1])
            closes = {(r["symbol"], r["bucket"].date()): r["close"] for r in bars.iter_rows(named=True)}
        equity: dict[str, list[tuple[datetime, float]]] = {}
        for at, states in portfolio.account_states_at(conn, times).items():
            day = (at - timedelta(days=1)).date()
            for s in states:
                if s.market == market:
                    value = s.cash + sum(q * closes.get((sym, day), 0.0) for sym, q in s.positions.items())
                    equity.setdefault(s.account, []).append((at, value))
        return cls(equity)

    def attach(self, conn: psycopg.Connection, contexts: Sequence) -> None:
        """Give each context (lib/recommend/schema.AccountContext) its guarding, and record its equity."""
        if not contexts:
            return
        at = contexts[0].decided_at
        states = {s.account: s for s in portfolio.account_states(conn, at)}
        exits = portfolio.exits_between(conn, at - timedelta(days=EXIT_LOOKBACK_DAYS), at)
        for c in contexts:
            points = self.equity.setdefault(c.account, [])
            if not points or points[-1][0] < at:
                points.append((at, c.equity))
            state = states[c.account]
            history = history_of(points, exits.get(c.account, []), state.net_deposits, at)
            c.guarding = guarding_for(c.equity, state.protections, state.prop_firm, history, account=c.account)


EXIT_LOOKBACK_DAYS = 400  # exits older than this act on no guard with any sane window (cooldown, stop-out window)

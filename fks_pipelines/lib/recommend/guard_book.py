"""The history the guards read during one run of the daily recommendation (lib/recommend/daily.py), assembled from
the stores: equity at each decision time and recent exits, per account (lib/recommend/guarding.py applies them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

import psycopg

from fks_pipelines.lib.db import portfolio, recommendations
from fks_pipelines.lib.db.marts import daily_bars
from fks_pipelines.lib.portfolio.guards import History
from fks_pipelines.lib.recommend.guarding import guarding_for, history_of


class GuardBook:
    """The history every account's guards read during one run over days: equity at each decision time, seeded
    once from the ledger before the run's first day (one replay) and extended day by day with each decision's own
    equity; exits read from the ledger per day (a stop fill of the fill day is written before the next decision
    reads it). Point-in-time: a decision's guards see equity up to its own and exits stamped before it."""

    def __init__(
        self,
        equity: dict[str, list[tuple[datetime, float]]],
        settings: dict[str, tuple[dict | None, dict | None, float]] | None = None,
    ):
        self.equity = equity
        self.settings = settings or {}  # per account: protections, prop-firm rules, opening deposit

    @classmethod
    def seed(cls, conn: psycopg.Connection, market: str, symbols: list[str], first_day: date) -> GuardBook:
        start = portfolio.first_deposit(conn)
        if start is None:
            return cls({})
        settings = portfolio.guard_settings(conn)  # an import cannot change them while a run holds its lock
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
        return cls(equity, settings)

    def attach(self, conn: psycopg.Connection, contexts: Sequence) -> None:
        """Give each context (lib/recommend/schema.AccountContext) its guarding, and record its equity."""
        if not contexts:
            return
        at = contexts[0].decided_at
        configured = {}
        for c in contexts:
            protections, prop_firm, _ = self.settings.get(c.account, (None, None, 0.0))
            configured[c.account] = guarding_for(
                c.equity, protections, prop_firm, History([], [], 0.0), account=c.account
            )
        # Only the exits a guard can still act on: the longest stop-out window plus its pause, or cooldown.
        days = max(
            max(p.stoploss_window_days + p.stoploss_pause_days, p.cooldown_days or 0)
            for p in (g.protections for g in configured.values())
        )
        exits = portfolio.exits_between(conn, at - timedelta(days=days + 1), at)
        for c in contexts:
            points = self.equity.setdefault(c.account, [])
            if not points or points[-1][0] < at:
                points.append((at, c.equity))
            opening = self.settings.get(c.account, (None, None, 0.0))[2]
            history = history_of(points, exits.get(c.account, []), opening, at)
            c.guarding = replace(configured[c.account], history=history)

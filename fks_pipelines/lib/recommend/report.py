"""Whether following the recommendations helps, assembled from the stores: each paper account's curves (its
ledger and the baselines, lib/recommend/evaluation.py) and, beside an LLM, the rules engine's shadow ledger; and
the picture of them all. Read by the evaluation asset and by benchmarks/backfill.py's report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import psycopg

from fks_pipelines.lib.db import analytics, knowledge, recommendations
from fks_pipelines.lib.db.marts import daily_bars
from fks_pipelines.lib.db.portfolio import account_states, trade_history
from fks_pipelines.lib.portfolio.paper import Target
from fks_pipelines.lib.recommend.evaluation import Curve, evaluate, ledger_curve
from fks_pipelines.lib.recommend.plots import equity_drawdown_png


@dataclass(frozen=True)
class AccountCurves:
    """One paper account as one generator traded it: the followed ledger with the baselines, or (``shadow``) the
    ledger of a generator the account did not follow, alone."""

    account: str
    generator: str
    curves: list[Curve]
    shadow: bool = False

    @property
    def label(self) -> str:
        return f"{self.account} ({self.generator})"


def account_curves(conn: psycopg.Connection, market: str, symbols: Sequence[str]) -> list[AccountCurves]:
    """Every paper account of ``market`` with recommendations, from its first to its last decision day: its
    ledger, cash, buy-and-hold and the strategies alone from the account's state at D0's close, over the same
    days and prices with the same fill rules; then each generator it did not follow, replayed the same way."""
    out = []
    shadow_days = recommendations.shadow_windows(conn, market)
    for account, start, end, generator, n in recommendations.paper_windows(conn, market):
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        first_close = recommendations.decision_time(start)
        state = next(s for s in account_states(conn, first_close) if s.account == account)
        before, until = first_close - timedelta(days=1), recommendations.decision_time(end)
        prices: dict[str, dict[date, tuple[float, float]]] = {}
        for r in daily_bars(conn, market, list(symbols), before, until).iter_rows(named=True):
            prices.setdefault(r["symbol"], {})[r["bucket"].date()] = (r["open"], r["close"])
        positions = {
            (bucket.date(), symbol): position
            for bucket, symbol, position in analytics.strategy_positions(conn, market, list(symbols), before, until)
        }
        curves = evaluate(
            days,
            symbols,
            prices,
            cash=state.cash,
            positions=state.positions,
            trades=trade_history(conn, account),
            strategy_positions=positions,
            n_decisions=n,
            unprotected=_unprotected(recommendations.unprotected_targets(conn, account, start, end)),
        )
        out.append(AccountCurves(account, generator, curves))
        for (shadow_account, shadow), n_shadow in shadow_days.items():
            if shadow_account != account or shadow == generator:
                continue
            trades = recommendations.shadow_trade_history(conn, account, shadow)
            curve = ledger_curve(days, prices, state.cash, state.positions, trades, n_shadow)
            out.append(AccountCurves(account, shadow, [curve], shadow=True))
    return out


def _unprotected(rows: Sequence[tuple[date, str, str, float]]) -> dict[date, list[Target]]:
    out: dict[date, list[Target]] = {}
    for day, symbol, action, target in rows:
        out.setdefault(day, []).append(Target(symbol, action, target))
    return out


def evaluation_picture(evaluated: Sequence[AccountCurves], *, log_scale: bool = False) -> bytes:
    """Every account's curves, equity above drawdown, as PNG bytes."""
    title = "equity (x starting equity) and drawdown: recommendations vs baselines"
    return equity_drawdown_png({e.label: e.curves for e in evaluated}, title=title, log_scale=log_scale)


def decision_evidence(conn: psycopg.Connection, day: date) -> list[tuple[str, str, str | None, datetime, str]]:
    """What the day's decisions read from the knowledge layer: (account, kind, symbol, as_of, first line) of each
    retrieved document still stored, the day's own facts first (newest as_of), then older ones such as analogs."""
    retrieved = recommendations.retrieved_ids(conn, day)
    documents = knowledge.documents_by_id(conn, [i for _, i in retrieved])
    rows = [
        (account, d.kind, d.symbol, d.as_of, d.text.split("\n", 1)[0])
        for account, i in retrieved
        if (d := documents.get(i)) is not None
    ]
    # By account, newest first, then symbol (a document about no symbol last) and kind.
    return sorted(rows, key=lambda r: (r[0], -r[3].timestamp(), r[2] is None, r[2] or "", r[1]))

"""The account's protections applied to a day's sized recommendation (lib/portfolio/guards.py decides; this
carries its acts onto the recommendation): a blocked buy becomes a hold, a capped buy keeps its capped size,
each change is one more clamp record naming the guard and its reason, and every act is returned for
recommendations.guards. Point-in-time: the history is read up to the decision time only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fks_pipelines.lib.portfolio.guards import (
    Act,
    Fill,
    History,
    PropFirmRules,
    Protections,
    Target,
    evaluate,
    guard_targets,
    prop_rules_from,
    protections_from,
)
from fks_pipelines.lib.portfolio.ledger import Trade
from fks_pipelines.lib.portfolio.paper import FEE, SLIPPAGE
from fks_pipelines.lib.portfolio.sizing import tier_for
from fks_pipelines.lib.portfolio.stops import reason_of


@dataclass(frozen=True)
class Guarding:
    """What the guards of one account read at one decision: its protections (the tier's defaults with the
    account's overrides), its prop-firm rules, and its history up to the decision."""

    protections: Protections
    rules: PropFirmRules | None
    history: History


def history_of(
    equity: Iterable[tuple[datetime, float]], trades: Iterable[Trade], initial: float, at: datetime
) -> History:
    """The account's history as of ``at``: equity at each decision time up to ``at`` and the exits stamped
    before it (a stop fill's id says stop_loss or take_profit; any other sell is a plain exit)."""
    points = sorted((t, v) for t, v in equity if t <= at)
    exits = [
        Fill(t.symbol, t.executed_at, reason_of(t.trade_id) or "sell")
        for t in trades
        if t.side == "sell" and t.executed_at < at
    ]
    return History(points, exits, initial)


def guarding_for(
    equity_now: float, overrides: dict | None, prop_firm: dict | None, history: History, *, account: str
) -> Guarding:
    where = f"account {account}"
    tier = tier_for(max(equity_now, 0.0)).name
    return Guarding(protections_from(overrides, tier, where=where), prop_rules_from(prop_firm, where=where), history)


def apply_guards(recommendations: Sequence, guarding: Guarding, *, equity: float, decided_at: datetime) -> list[Act]:
    """Apply the guards to ``recommendations`` (lib/recommend/generate.py's SizedRecommendation, changed in
    place) and return every act."""
    verdict = evaluate(guarding.protections, guarding.rules, guarding.history, decided_at)
    targets = [
        Target(r.symbol, r.action, r.target_allocation, r.current_allocation, r.entry or r.reference_price, r.stop_loss)
        for r in recommendations
    ]
    guarded, acts = guard_targets(
        targets, verdict, rules=guarding.rules, history=guarding.history, equity=equity, fee=FEE, slippage=SLIPPAGE
    )
    for r, g in zip(recommendations, guarded, strict=True):
        if g.target != r.target_allocation or g.action != r.action:
            mine = [a for a in acts if a.symbol in (None, r.symbol)] or acts
            rule = "; ".join(f"guard {a.guard}: {a.reason}" for a in mine)
            r.clamps.append(
                {
                    "field": "target_allocation",
                    "from": r.target_allocation,
                    "to": g.target,
                    "rule": rule,
                    "guard": True,  # the evaluation's "unprotected" curve undoes these (lib/recommend/evaluation.py)
                    "action_from": r.action,
                }
            )
            r.target_allocation, r.action = g.target, g.action
    return acts

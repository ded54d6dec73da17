"""The rules engine: the same schema from the same inputs, without a model. It targets what the chosen strategy
holds at the close (analytics.strategy_state), not only the day its signal fires: a strategy that is long gives
an empty account "buy to X%", an account already near X% "hold", and when the strategy exits, "sell". X is the
account tier's cap scaled by the confidence (out-of-sample Sharpe, the regime's next-day odds) and cut by the
same volatility, risk-per-trade and cash caps the sizing applies. A 'cash' choice, or no choice, targets cash.

Each rationale names the record of what it follows (lib/recommend/feedback.py: the known outcomes of the strategy
in today's regime). With the feedback on (``FKS_FEEDBACK``; off by default, docs/evaluation.md says why), the
confidence is first calibrated by that record, so a (strategy, regime) that has not paid holds less."""

from __future__ import annotations

from typing import Literal

from fks_pipelines.lib.db.recommendations import LONG_DUST
from fks_pipelines.lib.portfolio.sizing import Proposal, default_stop, default_take_profit, size
from fks_pipelines.lib.recommend.schema import AccountContext, AccountRecommendation, SymbolRecommendation

REBALANCE_BAND = 0.02  # |target - current| within this share of equity (or a quarter of the target): hold
DUST = LONG_DUST  # an allocation at or below this is treated as none


def _direction(regime: dict | None) -> tuple[float, float]:
    probabilities = (regime or {}).get("next_day_probabilities") or {}
    up = sum(v for k, v in probabilities.items() if k.startswith("up"))
    down = sum(v for k, v in probabilities.items() if k.startswith("down"))
    return up, down


def recommend_by_rules(context: AccountContext) -> AccountRecommendation:
    out = []
    cash_share = context.cash / context.equity if context.equity > 0 else 0.0
    for s in context.symbols:
        state = s.state or {}
        chosen = s.chosen_strategy
        position = state.get("position", "flat")
        up, down = _direction(s.regime)
        sharpe = (s.strategy or {}).get("oos_sharpe") or 0.0
        confidence = round(min(0.9, max(0.2, 0.5 + 0.05 * sharpe + 0.3 * (up - down))), 3)
        record = ""
        if s.record is not None:  # what followed the last times (feedback.py): shown, and acted on if calibrating
            record = f"; record: {s.record.summary()}"
            if context.calibrate and s.record.n:
                calibrated = round(min(0.9, max(0.2, s.record.calibrated(confidence))), 3)
                record += f", confidence {confidence:.2f} -> {calibrated:.2f}"
                confidence = calibrated
        sigma = s.daily_volatility or 0.03
        current = s.current_allocation
        regime = f"regime {(s.regime or {}).get('regime', 'unknown')} (next day up {up:.0%}, down {down:.0%})"
        if not chosen or chosen == "cash":
            reason, wanted = "no strategy beats cash: the target is cash", 0.0
        elif position == "long":
            since = f" since {state['since'][:10]}" if state.get("since") else ""
            pnl = state.get("unrealised_pnl")
            reason = f"{chosen} is long{since}" + (f" ({pnl:+.1%} unrealised)" if pnl is not None else "")
            # The most the sizing allows for a fresh buy at this confidence (tier, stop risk, volatility, cash).
            allowed, _ = size(
                Proposal("buy", context.limits.max_allocation * confidence, s.price, None, None),
                price=s.price,
                daily_volatility=s.daily_volatility,
                current_allocation=current,
                cash_share=cash_share,
                lim=context.limits,
            )
            wanted = allowed.target_allocation
        else:
            reason, wanted = f"{chosen} is {position}: long-only spot holds no position", 0.0
        action: Literal["buy", "sell", "hold"]
        if wanted <= DUST:
            action, target = ("sell", 0.0) if current > DUST else ("hold", 0.0)
            if action == "sell":
                confidence = round(max(confidence, 0.5), 3)
        elif abs(wanted - current) <= max(REBALANCE_BAND, 0.25 * wanted):
            action, target = "hold", current
        else:
            action, target = ("buy", wanted) if wanted > current else ("sell", wanted)
        protects = target > DUST  # stops and targets only for a position held or opened
        out.append(
            SymbolRecommendation(
                symbol=s.symbol,
                action=action,
                target_allocation=min(max(target, 0.0), 1.0),
                entry=s.price,
                stop_loss=default_stop(s.price, sigma) if protects else None,
                take_profit=default_take_profit(s.price, sigma) if protects else None,
                horizon_days=7,
                confidence=confidence,
                rationale=f"{reason}; {action} to {target:.1%} (now {current:.1%}); {regime}{record}.",
                evidence=[d.id for d in s.documents[:2]],
            )
        )
    return AccountRecommendation(account=context.account, recommendations=out)

"""The rules engine: the same schema from the same inputs, without a model. It follows the walk-forward
chosen strategy's signal, leans on the regime's next-day probabilities, and sizes by confidence."""

from __future__ import annotations

from typing import Literal

from fks_pipelines.lib.portfolio.sizing import default_stop, default_take_profit
from fks_pipelines.lib.recommend.schema import AccountContext, AccountRecommendation, SymbolRecommendation


def _direction(regime: dict | None) -> tuple[float, float]:
    probabilities = (regime or {}).get("next_day_probabilities") or {}
    up = sum(v for k, v in probabilities.items() if k.startswith("up"))
    down = sum(v for k, v in probabilities.items() if k.startswith("down"))
    return up, down


def recommend_by_rules(context: AccountContext) -> AccountRecommendation:
    out = []
    for s in context.symbols:
        chosen = (s.strategy or {}).get("strategy")
        signal = s.signals.get(chosen, {}) if chosen else {}
        up, down = _direction(s.regime)
        sharpe = (s.strategy or {}).get("oos_sharpe") or 0.0
        confidence = round(min(0.9, max(0.2, 0.5 + 0.05 * sharpe + 0.3 * (up - down))), 3)
        sigma = s.daily_volatility or 0.03
        reasons = [
            f"{chosen or 'no strategy'}: "
            f"{'entry' if signal.get('entry') else 'exit' if signal.get('exit') else 'no'} signal"
        ]
        reasons.append(f"regime {(s.regime or {}).get('regime', 'unknown')} (next day up {up:.0%}, down {down:.0%})")
        action: Literal["buy", "sell", "hold"]
        if signal.get("entry") and up >= down:
            action, target = "buy", round(context.limits.max_allocation * confidence, 4)
        elif (signal.get("exit") or down > 0.5) and s.current_allocation > 0:
            action, target, confidence = "sell", 0.0, round(max(confidence, 0.5), 3)
        else:
            action, target = "hold", s.current_allocation
        protects = action == "buy" or target > 0  # stops and targets only for a position held or opened
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
                rationale="; ".join(reasons) + ".",
                evidence=[d.id for d in s.documents[:2]],
            )
        )
    return AccountRecommendation(account=context.account, recommendations=out)

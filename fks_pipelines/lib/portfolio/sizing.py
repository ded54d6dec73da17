"""Capital tiers and deterministic sizing: whatever a generator proposes, these rules have the last word.

Tiers go from conservative for small accounts to aggressive for large ones ("$100 conservative → $1M
aggressive"): each sets the risk per trade (the equity share lost if the stop is hit) and the largest
allocation per position. The account's kind scales the risk (prop firms have drawdown rules; long-term
money is not traded hard). A volatility cap keeps a position's one-day 99% loss within twice the risk per
trade. Long-only spot: allocations are between 0 and the caps, and buying needs cash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Tier:
    name: str
    min_equity: float
    style: str
    risk_per_trade: float
    max_allocation: float


TIERS = (
    Tier("micro", 0, "conservative", 0.005, 0.10),
    Tier("small", 1_000, "cautious", 0.0075, 0.15),
    Tier("medium", 10_000, "balanced", 0.01, 0.20),
    Tier("large", 100_000, "growth", 0.015, 0.25),
    Tier("whale", 1_000_000, "aggressive", 0.02, 0.30),
)
KIND_RISK = {"personal": 1.0, "prop_firm": 0.5, "long_term": 0.75}
Z_99 = 2.326


STOP_FLOOR = 0.1  # a stop lies below the entry, at most 90% below it
TAKE_PROFIT_CEILING = 3.0  # a take-profit lies above the entry, at most 3x it


def default_stop(entry: float, sigma: float) -> float:
    """A stop two daily standard deviations below the entry (never below the floor)."""
    return round(entry * max(1 - 2 * sigma, STOP_FLOOR), 8)


def default_take_profit(entry: float, sigma: float) -> float:
    """A take-profit three daily standard deviations above the entry (never above the ceiling)."""
    return round(entry * min(1 + 3 * sigma, TAKE_PROFIT_CEILING), 8)


def tier_for(equity: float) -> Tier:
    return [t for t in TIERS if equity >= t.min_equity][-1]


@dataclass(frozen=True)
class Limits:
    tier: Tier
    risk_per_trade: float
    max_allocation: float


def limits(equity: float, kind: str) -> Limits:
    tier = tier_for(equity)
    return Limits(tier, tier.risk_per_trade * KIND_RISK[kind], tier.max_allocation)


@dataclass
class Proposal:
    action: str
    target_allocation: float
    entry: float | None
    stop_loss: float | None
    take_profit: float | None


def size(
    proposal: Proposal,
    *,
    price: float,
    daily_volatility: float | None,
    current_allocation: float,
    cash_share: float,
    lim: Limits,
) -> tuple[Proposal, list[dict]]:
    """The proposal made safe, and one record per rule that changed it (field, from, to, rule)."""
    clamps: list[dict] = []
    p = Proposal(**vars(proposal))

    def clamp(field: str, value, rule: str) -> None:
        old = getattr(p, field)
        if old != value:  # non-finite values are recorded as text (JSON, and so PostgreSQL's jsonb, has no Infinity)
            shown = str(old) if isinstance(old, float) and not math.isfinite(old) else old
            clamps.append({"field": field, "from": shown, "to": value, "rule": rule})
            setattr(p, field, value)

    sigma = daily_volatility if daily_volatility and math.isfinite(daily_volatility) and daily_volatility > 0 else 0.05
    if not math.isfinite(p.target_allocation) or p.target_allocation < 0:
        clamp("target_allocation", 0.0, "allocation must be a share between 0 and 1 (long-only spot)")
    if p.entry is None or not math.isfinite(p.entry) or not 0.5 * price <= p.entry <= 1.5 * price:
        clamp("entry", price, "the entry must be near the current price (the close at decision time)")
    if p.action == "hold":
        clamp("target_allocation", current_allocation, "hold keeps the current allocation")
    elif p.action == "sell" and p.target_allocation > current_allocation:
        clamp("target_allocation", current_allocation, "a sell cannot raise the allocation")
    # A buy needs a stop and a take-profit; any one given, for any action, must lie in sane bounds of the entry.
    entry = price if p.entry is None else p.entry  # never None after the entry rule above
    if p.stop_loss is None and p.action == "buy":
        clamp("stop_loss", default_stop(entry, sigma), "a buy needs a stop below the entry: 2 daily sigmas")
    elif p.stop_loss is not None and not STOP_FLOOR * entry <= p.stop_loss < entry:
        clamp(
            "stop_loss",
            default_stop(entry, sigma),
            f"a stop lies below the entry, at most {1 - STOP_FLOOR:.0%} below: 2 daily sigmas",
        )
    if p.take_profit is None and p.action == "buy":
        clamp(
            "take_profit",
            default_take_profit(entry, sigma),
            "a buy needs a take-profit above the entry: 3 daily sigmas",
        )
    elif p.take_profit is not None and not entry < p.take_profit <= TAKE_PROFIT_CEILING * entry:
        clamp(
            "take_profit",
            default_take_profit(entry, sigma),
            f"a take-profit lies above the entry, at most {TAKE_PROFIT_CEILING:g}x it: 3 daily sigmas",
        )
    if p.action == "buy":
        stop = p.stop_loss
        if stop is None:  # the stop rule above gives every buy a stop
            raise ValueError("a buy reached the allocation caps without a stop")
        caps = [
            (lim.max_allocation, f"tier {lim.tier.name}: at most {lim.max_allocation:.0%} per position"),
            (
                lim.risk_per_trade * entry / (entry - stop),
                f"risk per trade {lim.risk_per_trade:.2%} of equity to the stop",
            ),
            (
                2 * lim.risk_per_trade / (Z_99 * sigma),
                "volatility cap: one-day 99% loss within twice the risk per trade",
            ),
            (current_allocation + max(cash_share, 0.0), "available cash"),
        ]
        for cap, rule in caps:
            if p.target_allocation > cap:
                clamp("target_allocation", round(max(cap, 0.0), 6), rule)
        if p.target_allocation < current_allocation:
            clamp("target_allocation", current_allocation, "a buy cannot lower the allocation")
    if p.target_allocation > 1.0:
        clamp("target_allocation", 1.0, "allocation must be a share between 0 and 1 (long-only spot)")
    return p, clamps


def profit_split(
    equity_start: float, equity_end: float, net_deposits: float, share: float = 0.5
) -> tuple[float, float]:
    """(profit, transfer): the month's profit net of deposits and withdrawals; ``share`` of a profit moves to
    the long-term account, a loss moves nothing (and is not carried)."""
    profit = equity_end - equity_start - net_deposits
    return profit, round(max(profit, 0.0) * share, 8)


def split_month(latest: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the last complete UTC month of the market data whose latest daily bar is ``latest``: the
    month before ``latest``'s, or ``latest``'s own when ``latest`` is its last day (its close ends the month)."""
    month_end = datetime(latest.year, latest.month, 1, tzinfo=UTC)  # the last complete month ends here
    month_start = (month_end - timedelta(days=1)).replace(day=1)
    if (latest + timedelta(days=1)).month != latest.month:  # the latest day closes its month
        month_start, month_end = month_end, (latest + timedelta(days=1))
    return month_start, month_end

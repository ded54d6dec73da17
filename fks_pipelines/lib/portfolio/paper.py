"""Paper accounts: the fills that follow one day's recommendation.

Point-in-time: the recommendation for day D is decided at D's close; its fills happen at the open of D+1 (the
first price after the decision), so they are computed only once D+1's bar exists. Each fill is stamped one
second after D+1 00:00 UTC, so D's own decision (as of D+1 00:00) never sees it and D+1's does. Sells go
first (they free cash), then buys, each at the open moved against the account by the slippage, paying the fee
on the notional. A "hold" trades nothing; "buy"/"sell" trade to the target share of the equity at the open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal

from fks_pipelines.lib.portfolio.ledger import PAPER_PREFIX, PLACES, Trade

FEE = 0.001  # per fill, of the notional (Binance spot taker: 0.1%), as the backtests use
SLIPPAGE = 0.0005  # the fill price is the open moved this share against the account
MIN_NOTIONAL = 1.0  # USDT: smaller rebalances are not worth a fill


@dataclass(frozen=True)
class Target:
    symbol: str
    action: str  # buy | sell | hold
    target_allocation: float


def _amount(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(PLACES, rounding=ROUND_DOWN)


def paper_fills(
    decision_day: date,
    targets: list[Target],
    *,
    cash: float,
    positions: dict[str, float],
    opens: dict[str, float],
    fill_at: datetime,
    fee: float = FEE,
    slippage: float = SLIPPAGE,
) -> list[Trade]:
    """The trades that bring the account (``cash``, ``positions`` as of the decision) to the targets at the
    ``opens`` of the next day. Symbols without an open that day are not traded."""
    equity = cash + sum(q * opens[s] for s, q in positions.items() if s in opens)
    fills: list[Trade] = []
    wanted = [t for t in targets if t.action in ("buy", "sell") and t.symbol in opens]

    def trade(symbol: str, side: str, quantity: float, price: float) -> float:
        q, p = _amount(quantity), _amount(price)
        if q <= 0 or float(q * p) < MIN_NOTIONAL:
            return 0.0
        cost = q * p * Decimal(repr(fee))
        f = cost.quantize(PLACES)
        fills.append(Trade(f"{PAPER_PREFIX}{decision_day.isoformat()}-{symbol}", symbol, side, q, p, f, fill_at))
        return float(q * p) * (1 if side == "sell" else -1) - float(f)

    for t in sorted(wanted, key=lambda t: t.symbol):
        held = positions.get(t.symbol, 0.0)
        target_qty = t.target_allocation * equity / opens[t.symbol]
        if target_qty < held:
            quantity = held if t.target_allocation <= 0 else held - target_qty
            cash += trade(t.symbol, "sell", quantity, opens[t.symbol] * (1 - slippage))
    for t in sorted(wanted, key=lambda t: t.symbol):
        held = positions.get(t.symbol, 0.0)
        target_qty = t.target_allocation * equity / opens[t.symbol]
        if target_qty > held:
            price = opens[t.symbol] * (1 + slippage)
            quantity = min(target_qty - held, max(cash, 0.0) / (price * (1 + fee)))
            cash += trade(t.symbol, "buy", quantity, price)
    return fills


def fill_time(decision_day: date) -> datetime:
    """When a paper fill of ``decision_day``'s recommendation is stamped: one second into the next UTC day."""
    return datetime.combine(decision_day + timedelta(days=1), time(0, 0, 1), tzinfo=UTC)

"""Stops and take-profits that execute: a paper position is watched bar by bar after its fill.

A position's stop-loss and take-profit are the ones of the recommendation that holds it (the latest
recommendation of the symbol that carries them). Every hourly bar after the day's open rebalance is checked,
in time order, and the first bar that touches one closes the whole position, as its own fill with its reason:

- a bar that **opens** at or beyond a level gapped through it: the fill is at that bar's open (worse than the
  level for a stop, better for a take-profit), because no trade happened at the level itself;
- a bar that touches the stop (low <= stop) fills at the stop;
- a bar that touches the take-profit (high >= take-profit) fills at the take-profit;
- a bar that touches **both** fills at the stop: one hourly bar cannot say which came first, so the worse fill
  is assumed (backtesting.py and freqtrade assume the same).

Each exit pays the fee on its notional and the slippage against the account, like the open rebalance
(lib/portfolio/paper.py). Point-in-time: an exit is stamped at the end of the bar that triggered it (its open
plus the bar's length, less one second), so the decision at the end of that day sees it and no earlier one
does; bars after the decision day's fill day are never read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from fks_pipelines.lib.portfolio.ledger import PAPER_PREFIX, PLACES, Trade

HOUR = timedelta(hours=1)
STOP_LOSS = "stop_loss"
TAKE_PROFIT = "take_profit"


@dataclass(frozen=True)
class Bar:
    opened_at: datetime
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True)
class Levels:
    """The exits a position carries; either may be None (not set)."""

    stop_loss: float | None
    take_profit: float | None

    def __post_init__(self) -> None:
        for name in ("stop_loss", "take_profit"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive price, got {value!r}")
        if self.stop_loss is not None and self.take_profit is not None and self.stop_loss >= self.take_profit:
            raise ValueError(f"stop_loss {self.stop_loss} must lie below take_profit {self.take_profit}")


@dataclass(frozen=True)
class Exit:
    price: float  # before slippage
    at: datetime  # the end of the bar that triggered it, less one second
    reason: str  # stop_loss | take_profit
    gap: bool  # the bar opened beyond the level: filled at the open


def first_exit(bars: Iterable[Bar], levels: Levels, *, bar_length: timedelta = HOUR) -> Exit | None:
    """The first exit ``levels`` trigger on ``bars`` (in time order), or None."""
    stop, take = levels.stop_loss, levels.take_profit
    if stop is None and take is None:
        return None
    for bar in bars:
        at = bar.opened_at + bar_length - timedelta(seconds=1)
        if stop is not None and bar.open <= stop:
            return Exit(bar.open, at, STOP_LOSS, True)
        if take is not None and bar.open >= take:
            return Exit(bar.open, at, TAKE_PROFIT, True)
        if stop is not None and bar.low <= stop:  # alone, or with the take-profit: the worse fill
            return Exit(stop, at, STOP_LOSS, False)
        if take is not None and bar.high >= take:
            return Exit(take, at, TAKE_PROFIT, False)
    return None


def _amount(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(PLACES, rounding=ROUND_DOWN)


def exit_trade_id(decision_day: date, symbol: str, reason: str) -> str:
    """The id of a stop fill: ``paper-<decision day>-<symbol>-sl`` (or ``-tp``). It shares the decision day's
    prefix, so replacing a day's paper fills replaces its stop fills too."""
    return f"{PAPER_PREFIX}{decision_day.isoformat()}-{symbol}-{'sl' if reason == STOP_LOSS else 'tp'}"


def stop_fills(
    decision_day: date,
    positions: Mapping[str, float],
    levels: Mapping[str, Levels],
    bars: Mapping[str, Sequence[Bar]],
    *,
    fee: float,
    slippage: float,
    bar_length: timedelta = HOUR,
) -> list[Trade]:
    """The exits of the positions held after ``decision_day``'s open rebalance: for each symbol held with
    levels, the first bar of ``bars`` (the fill day's bars, in time order) that triggers one sells the whole
    position. Symbols without levels or bars are left alone."""
    fills = []
    for symbol in sorted(positions):
        quantity = positions[symbol]
        if quantity <= 0 or symbol not in levels:
            continue
        hit = first_exit(bars.get(symbol, ()), levels[symbol], bar_length=bar_length)
        if hit is None:
            continue
        q, p = _amount(quantity), _amount(hit.price * (1 - slippage))
        if q <= 0 or p <= 0:
            continue
        f = (q * p * Decimal(repr(fee))).quantize(PLACES)
        fills.append(Trade(exit_trade_id(decision_day, symbol, hit.reason), symbol, "sell", q, p, f, hit.at))
    return fills


def reason_of(trade_id: str) -> str | None:
    """stop_loss / take_profit for a stop fill's id, None for any other trade."""
    if not trade_id.startswith(PAPER_PREFIX):
        return None
    return {"-sl": STOP_LOSS, "-tp": TAKE_PROFIT}.get(trade_id[-3:])

"""The one replay of a ledger's decisions: what each ledger (a paper account, or a generator's shadow ledger beside
it) fills for one decision day, at the prices that day's fills may execute at.

Point-in-time: a ledger enters the replay as it stands at the decision (cash and positions up to the decision time,
nothing later), with the targets decided then; its fills happen at the first prices after the decision (the next
UTC day's open, :mod:`fks_pipelines.lib.portfolio.paper`). The caller replays day by day, reading each ledger again
after the previous day's fills are written, so a day's fills always start from the ledger those fills left.

``FillBars`` carries the prices a day's fills may execute at: the next day's opens for the rebalance to the day's
targets, and that day's hourly bars, on which every position the ledger holds after the rebalance is watched for
its stop-loss and take-profit (:mod:`fks_pipelines.lib.portfolio.stops`); an exit is one more fill of the same
decision day, stamped at the end of the bar that triggered it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from fks_pipelines.lib.portfolio.ledger import Trade
from fks_pipelines.lib.portfolio.paper import FEE, SLIPPAGE, Target, fill_time, paper_fills
from fks_pipelines.lib.portfolio.stops import HOUR, Bar, Levels, stop_fills


@dataclass(frozen=True)
class Ledger:
    """One ledger to fill for a decision day: whose it is, what it holds at the decision time (cash in USDT,
    quantity per symbol), and the targets decided for it that day."""

    account: str
    cash: float
    positions: dict[str, float]
    targets: list[Target] = field(default_factory=list)
    levels: dict[str, Levels] = field(default_factory=dict)  # the stop-loss / take-profit each position carries


@dataclass(frozen=True)
class FillBars:
    """The prices a decision day's fills may execute at: each symbol's open of the next UTC day (the first price
    after the decision). A symbol without one is not traded that day."""

    opens: dict[str, float]
    # The fill day's bars per symbol, in time order (hourly; a day's single bar where no hourly bar exists), on which
    # the positions' stops and take-profits are checked after the open's fills; none: no stop is checked.
    bars: dict[str, list[Bar]] = field(default_factory=dict)
    bar_length: dict[str, timedelta] = field(default_factory=dict)  # per symbol; one hour unless given


@dataclass(frozen=True)
class LedgerFills:
    """The fills of one ledger for one decision day: the rebalance to the day's targets at the next open, then
    any stop-loss or take-profit exit during the fill day (their ids end in ``-sl`` / ``-tp``)."""

    account: str
    decision_day: date
    fills: list[Trade]


def replay_day(
    decision_day: date,
    ledgers: Iterable[Ledger],
    bars: FillBars,
    *,
    fee: float = FEE,
    slippage: float = SLIPPAGE,
) -> Iterator[LedgerFills]:
    """Per ledger, in the order given, the fills of ``decision_day``'s targets at ``bars`` (every ledger yields,
    with no fills when it has nothing to trade: its day's fills are then exactly none). Lazy: a ledger is read
    only when the previous one's fills have been taken, so a caller may write each before reading the next."""
    for ledger in ledgers:
        fills = paper_fills(
            decision_day,
            ledger.targets,
            cash=ledger.cash,
            positions=ledger.positions,
            opens=bars.opens,
            fill_at=fill_time(decision_day),
            fee=fee,
            slippage=slippage,
        )
        held = dict(ledger.positions)
        for t in fills:
            held[t.symbol] = held.get(t.symbol, 0.0) + float(t.quantity) * (1 if t.side == "buy" else -1)
        exits: list[Trade] = []
        for symbol in sorted(set(ledger.levels) & set(bars.bars)):
            exits += stop_fills(
                decision_day,
                {symbol: held.get(symbol, 0.0)},
                ledger.levels,
                bars.bars,
                fee=fee,
                slippage=slippage,
                bar_length=bars.bar_length.get(symbol, HOUR),
            )
        yield LedgerFills(ledger.account, decision_day, fills + exits)

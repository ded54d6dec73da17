"""The one replay of a ledger's decisions: what each ledger (a paper account, or a generator's shadow ledger beside
it) fills for one decision day, at the prices that day's fills may execute at.

Point-in-time: a ledger enters the replay as it stands at the decision (cash and positions up to the decision time,
nothing later), with the targets decided then; its fills happen at the first prices after the decision (the next
UTC day's open, :mod:`fks_pipelines.lib.portfolio.paper`). The caller replays day by day, reading each ledger again
after the previous day's fills are written, so a day's fills always start from the ledger those fills left.

``FillBars`` carries the prices a day's fills may execute at; an execution rule that needs more of them (stops and
take-profits checked on every hourly bar after the fill) adds them there and yields its fills from
:func:`replay_day` beside the open's, each as its own :class:`LedgerFills`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from fks_pipelines.lib.portfolio.ledger import Trade
from fks_pipelines.lib.portfolio.paper import FEE, SLIPPAGE, Target, fill_time, paper_fills


@dataclass(frozen=True)
class Ledger:
    """One ledger to fill for a decision day: whose it is, what it holds at the decision time (cash in USDT,
    quantity per symbol), and the targets decided for it that day."""

    account: str
    cash: float
    positions: dict[str, float]
    targets: list[Target] = field(default_factory=list)


@dataclass(frozen=True)
class FillBars:
    """The prices a decision day's fills may execute at: each symbol's open of the next UTC day (the first price
    after the decision). A symbol without one is not traded that day."""

    opens: dict[str, float]


@dataclass(frozen=True)
class LedgerFills:
    """The fills of one ledger for one decision day, and why they happened (``reason``: ``open`` for the
    rebalance to the day's targets at the next open)."""

    account: str
    decision_day: date
    fills: list[Trade]
    reason: str = "open"


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
        yield LedgerFills(ledger.account, decision_day, fills)

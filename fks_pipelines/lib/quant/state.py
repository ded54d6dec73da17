"""What a strategy holds at a close: its entry/exit signals walked bar by bar into a position.

Point-in-time: the position at bar t depends on the signals of bars <= t only (and those signals on bars <= t,
see strategies.py). A signal acts at the close of its bar (the price the position is marked from); the
account that follows it trades later, at the next open (see lib/portfolio/paper.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from fks_pipelines.lib.quant.strategies import Bars, Strategy

CASH = "cash"  # the choice "no strategy beats cash": always flat


@dataclass(frozen=True)
class PositionState:
    position: str  # flat | long | short
    since: datetime | None  # the bar whose signal opened the position
    entry_price: float | None  # that bar's close
    unrealised_pnl: float | None  # last close / entry - 1, sign flipped for a short


FLAT = PositionState("flat", None, None, None)


def _time(value: np.datetime64) -> datetime:
    return value.astype("datetime64[us]").item().replace(tzinfo=UTC)


def position_state(
    bars: Bars, strategy: Strategy | None, params: Mapping, *, allow_shorts: bool = False
) -> PositionState:
    """The position after the last bar of ``bars`` (which must carry ``bucket`` times). Long-only by default:
    an exit closes a long; with ``allow_shorts`` an exit while flat or long opens a short and an entry closes it.
    ``strategy`` None (cash) is always flat."""
    close = bars["close"]
    if strategy is None or len(close) == 0:
        return FLAT
    entries, exits = strategy.signals(bars, **dict(params))
    position, opened = 0, -1
    for t in np.flatnonzero(entries | exits):
        if entries[t] and not exits[t] and position <= 0:
            position, opened = 1, int(t)
        elif exits[t] and not entries[t]:
            if position > 0:
                position, opened = (-1, int(t)) if allow_shorts else (0, -1)
            elif position == 0 and allow_shorts:
                position, opened = -1, int(t)
    if position == 0:
        return FLAT
    entry = float(close[opened])
    pnl = position * (float(close[-1]) / entry - 1)
    return PositionState("long" if position > 0 else "short", _time(bars["bucket"][opened]), entry, pnl)

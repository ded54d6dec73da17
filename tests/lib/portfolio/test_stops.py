"""Stops and take-profits on hourly bars: touched, gapped through, both in one bar, and nothing after the day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from fks_pipelines.lib.portfolio.stops import (
    STOP_LOSS,
    TAKE_PROFIT,
    Bar,
    Levels,
    first_exit,
    reason_of,
    stop_fills,
)

DAY = date(2024, 3, 2)  # the fill day of decision day 2024-03-01
T0 = datetime(2024, 3, 2, tzinfo=UTC)


def bars(*ohlc: tuple[float, float, float, float]) -> list[Bar]:
    return [Bar(T0 + timedelta(hours=i), *row) for i, row in enumerate(ohlc)]


def test_a_bar_falling_through_the_stop_fills_at_the_stop_with_fee_and_slippage():
    hourly = bars((100, 101, 99, 100), (100, 100, 94, 95), (95, 96, 90, 91))
    fills = stop_fills(
        date(2024, 3, 1), {"BTCUSDT": 2.0}, {"BTCUSDT": Levels(95, 110)}, {"BTCUSDT": hourly}, fee=0.001, slippage=0.0
    )
    assert len(fills) == 1
    (f,) = fills
    assert (f.side, f.quantity, f.price) == ("sell", Decimal("2.00000000"), Decimal("95.00000000"))
    assert f.fee == Decimal("0.19000000")  # 0.1% of 190
    assert f.executed_at == T0 + timedelta(hours=2) - timedelta(seconds=1)  # the end of the bar that touched it
    assert f.trade_id == "paper-2024-03-01-BTCUSDT-sl" and reason_of(f.trade_id) == STOP_LOSS


def test_a_bar_that_gaps_through_the_stop_fills_at_its_open_worse_than_the_stop():
    hit = first_exit(bars((100, 101, 99, 100), (90, 92, 88, 91)), Levels(95, 110))
    assert hit is not None and (hit.price, hit.reason, hit.gap) == (90, STOP_LOSS, True)
    fills = stop_fills(
        date(2024, 3, 1),
        {"ETHUSDT": 1.0},
        {"ETHUSDT": Levels(95, 110)},
        {"ETHUSDT": bars((100, 101, 99, 100), (90, 92, 88, 91))},
        fee=0.001,
        slippage=0.001,
    )
    assert fills[0].price == Decimal("89.91000000")  # the open, less the slippage


def test_a_gap_up_through_the_take_profit_fills_at_the_open_and_a_touch_at_the_level():
    assert first_exit(bars((112, 113, 111, 112)), Levels(95, 110)) == first_exit(
        bars((112, 113, 111, 112)), Levels(95, 110)
    )
    gap = first_exit(bars((112, 113, 111, 112)), Levels(95, 110))
    touch = first_exit(bars((100, 111, 99, 105)), Levels(95, 110))
    assert gap is not None and (gap.price, gap.reason, gap.gap) == (112, TAKE_PROFIT, True)
    assert touch is not None and (touch.price, touch.reason, touch.gap) == (110, TAKE_PROFIT, False)


def test_a_bar_touching_both_takes_the_worse_fill():
    hit = first_exit(bars((100, 115, 90, 100)), Levels(95, 110))
    assert hit is not None and (hit.price, hit.reason) == (95, STOP_LOSS)


def test_untouched_levels_no_levels_or_no_position_trade_nothing():
    quiet = bars((100, 105, 96, 100), (100, 109, 96, 101))
    assert first_exit(quiet, Levels(95, 110)) is None
    assert first_exit(bars((100, 200, 1, 100)), Levels(None, None)) is None
    assert stop_fills(date(2024, 3, 1), {"BTCUSDT": 0.0}, {"BTCUSDT": Levels(95, 110)},
                      {"BTCUSDT": bars((100, 100, 50, 60))}, fee=0.001, slippage=0.0) == []  # fmt: skip
    assert stop_fills(date(2024, 3, 1), {"BTCUSDT": 1.0}, {}, {"BTCUSDT": bars((100, 100, 50, 60))},
                      fee=0.001, slippage=0.0) == []  # fmt: skip


def test_the_first_touch_decides_and_later_bars_change_nothing():
    """Perturbing every bar after the one that triggered changes no fill: the exit is decided by the first touch."""
    head = [(100, 101, 99, 100), (99, 100, 94, 96)]
    one = stop_fills(date(2024, 3, 1), {"X": 1.0}, {"X": Levels(95, 110)}, {"X": bars(*head, (96, 97, 95.5, 96))},
                     fee=0.001, slippage=0.0005)  # fmt: skip
    other = stop_fills(date(2024, 3, 1), {"X": 1.0}, {"X": Levels(95, 110)}, {"X": bars(*head, (50, 200, 1, 7))},
                       fee=0.001, slippage=0.0005)  # fmt: skip
    assert one == other and len(one) == 1


@pytest.mark.parametrize(("stop", "take"), [(0, 110), (-1, 110), (float("nan"), 110), (110, 95), (100, 100)])
def test_impossible_levels_are_refused(stop, take):
    with pytest.raises(ValueError):
        Levels(stop, take)

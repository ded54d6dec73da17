"""The record's document builders, pure: a stop-loss fill, a position closed by its take-profit, a past
recommendation with its outcome; each with the text a person reads and the as_of when all of it existed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fks_pipelines.lib.rag.documents import (
    KINDS,
    RECORD_KINDS,
    position,
    position_episodes,
    recommendation,
    trade,
    trade_reason,
)
from tests.lib.rag.record_ledger import T0, fill

DAY = timedelta(days=1)


def test_record_kinds_are_apart_from_the_daily_kinds():
    assert set(RECORD_KINDS) == {"trade", "position", "recommendation"} and not set(RECORD_KINDS) & set(KINDS)


def test_a_stop_loss_fill_says_what_it_was_and_is_known_at_its_execution():
    at = T0 + timedelta(days=3, hours=10, seconds=3599)
    doc = trade("paper-one", "spot", fill("paper-2024-03-03-BTCUSDT-sl", "BTCUSDT", "sell", "0.5", "58000", at))
    assert doc.kind == "trade" and doc.as_of == at and doc.symbol == "BTCUSDT" and doc.market == "spot"
    assert doc.key == "trade/spot/paper-one/paper-2024-03-03-BTCUSDT-sl"
    assert "Account paper-one sold BTCUSDT (spot) at 58,000.00 on 2024-03-04 10:59 UTC" in doc.text
    assert "fee 0.10% of the notional: a stop-loss exit" in doc.text
    assert doc.metadata["reason"] == "stop_loss" and doc.metadata["fee_rate"] == pytest.approx(0.001)
    # No amount of the account's money: the analyst role reads the documents, never the ledger.
    assert "0.5" not in doc.text and "29" not in doc.text and "quantity" not in doc.metadata


def test_each_trade_s_reason_comes_from_its_id():
    assert trade_reason("paper-2024-03-03-BTCUSDT") == "rebalance"
    assert trade_reason("paper-2024-03-03-BTCUSDT-tp") == "take_profit"
    assert trade_reason("t1") == "imported"
    doc = trade("paper-one", "spot", fill("paper-2024-03-03-ETHUSDT", "ETHUSDT", "buy", "2", "50", T0))
    assert "bought ETHUSDT" in doc.text and "(recommendation of 2024-03-03)" in doc.text


def test_a_position_closed_by_its_take_profit_tells_its_outcome():
    closed_at = T0 + 12 * DAY + timedelta(hours=23, seconds=3599)
    trades = [
        fill("paper-2024-03-11-ETHUSDT", "ETHUSDT", "buy", "20", "55", T0 + 11 * DAY),
        fill("paper-2024-03-01-BTCUSDT", "BTCUSDT", "buy", "1", "100", T0 + 11 * DAY + timedelta(hours=1)),
        fill("paper-2024-03-12-ETHUSDT", "ETHUSDT", "buy", "20", "56", T0 + 12 * DAY),
        fill("paper-2024-03-12-ETHUSDT-tp", "ETHUSDT", "sell", "40", "61.6", closed_at),
        fill("paper-2024-03-14-ETHUSDT", "ETHUSDT", "buy", "1", "60", T0 + 14 * DAY),
    ]
    episodes = position_episodes("paper-one", trades)
    assert [(e.symbol, len(e.trades), e.closed) for e in episodes] == [
        ("ETHUSDT", 3, True),
        ("BTCUSDT", 1, False),
        ("ETHUSDT", 1, False),
    ]
    doc = position(episodes[0], "spot")
    assert doc.kind == "position" and doc.as_of == closed_at and doc.symbol == "ETHUSDT"
    assert doc.key == "position/spot/paper-one/ETHUSDT/2024-03-12T00:00:00"
    # 40 bought for 2,220 (entry 55.50), sold for 2,464 (exit 61.60), fees 0.1% of each fill: 4.684.
    assert doc.metadata["entry"] == pytest.approx(55.5) and doc.metadata["exit"] == pytest.approx(61.6)
    assert doc.metadata["return"] == pytest.approx((2464 - 2220 - 4.684) / 2222.22)
    assert "entry 55.50 on average, exit 61.60 on average, closed by a take profit" in doc.text
    assert "It returned +10.77% after every fee (fees 0.21% of what it bought): a win." in doc.text
    assert "(2.0 days, 3 trades)" in doc.text and "239" not in doc.text and "2,220" not in doc.text
    with pytest.raises(ValueError, match="still open"):
        position(episodes[1], "spot")


def row(action: str = "buy", rationale: str = "RSI oversold bounce") -> dict:
    return {
        "decision_date": date(2024, 3, 3),
        "account": "paper-one",
        "symbol": "BTCUSDT",
        "generator": "llm",
        "model": "qwen",
        "decided_at": datetime(2024, 3, 4, tzinfo=UTC),
        "action": action,
        "target_allocation": 0.25,
        "proposed_allocation": 0.3,
        "current_allocation": 0.1,
        "entry": None,
        "stop_loss": 96.9,
        "take_profit": 112.2,
        "horizon_days": 7,
        "confidence": 0.62,
        "rationale": rationale,
        "reference_price": 102.0,
    }


def test_a_past_recommendation_tells_what_happened_and_is_known_seven_days_after_its_decision():
    stop = fill(
        "paper-2024-03-03-BTCUSDT-sl", "BTCUSDT", "sell", "10", "96.9", datetime(2024, 3, 4, 10, 59, 59, tzinfo=UTC)
    )
    doc = recommendation(row(), "spot", {1: 0.012, 7: -0.05}, stop)
    assert doc.kind == "recommendation" and doc.key == "recommendation/spot/paper-one/BTCUSDT/2024-03-03"
    assert doc.as_of == datetime(2024, 3, 11, tzinfo=UTC)  # D+8 00:00: the close of D+7 is known
    assert "On 2024-03-03 (decided 2024-03-04 00:00 UTC) the llm (qwen) generator recommended BUY BTCUSDT" in doc.text
    assert "target 25.00% of equity (was 10.00%), confidence 0.62, close 102.00, stop-loss 96.90" in doc.text
    assert "Rationale: RSI oversold bounce" in doc.text
    assert "What happened: BTCUSDT fell, +1.20% after 1 day and -5.00% after 7 days." in doc.text
    assert "The account's stop-loss filled at 96.90 on 2024-03-04 10:59 UTC." in doc.text
    assert doc.metadata["return_7d"] == -0.05 and doc.metadata["exit"]["reason"] == "stop_loss"
    assert doc.metadata["decision_date"] == "2024-03-03"


def test_a_hold_is_short_a_long_rationale_is_cut_and_an_unknown_outcome_makes_no_document():
    hold = recommendation(row("hold", "nothing fired"), "spot", {7: 0.02})
    assert "recommended HOLD BTCUSDT" in hold.text and "Rationale" not in hold.text
    assert "rose, n/a after 1 day and +2.00% after 7 days" in hold.text and len(hold.text) < 300
    long = recommendation(row(rationale="trend up and volume rising " * 40), "spot", {1: 0.0, 7: 0.0})
    rationale = long.text.split("Rationale: ", 1)[1].split(" What happened", 1)[0]
    assert rationale.endswith(" ...") and len(rationale) <= 284
    with pytest.raises(ValueError, match="7-day outcome"):
        recommendation(row(), "spot", {1: 0.01})

"""Paper fills: at the next day's open, moved against the account by the slippage, paying the fee."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from fks_pipelines.lib.portfolio.paper import FEE, SLIPPAGE, Target, fill_time, paper_fills

DAY = date(2024, 5, 10)


def test_buys_and_sells_fill_at_the_next_open_with_fees_and_slippage():
    at = fill_time(DAY)
    assert at == datetime(2024, 5, 11, 0, 0, 1, tzinfo=UTC)  # after D's decision time (D+1 00:00)
    fills = paper_fills(
        DAY,
        [Target("BTCUSDT", "buy", 0.2), Target("ETHUSDT", "sell", 0.0), Target("SOLUSDT", "hold", 0.5)],
        cash=5_000.0,
        positions={"ETHUSDT": 2.0, "SOLUSDT": 10.0},
        opens={"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 100.0},
        fill_at=at,
    )
    by_symbol = {f.symbol: f for f in fills}
    assert set(by_symbol) == {"BTCUSDT", "ETHUSDT"}  # hold trades nothing
    sell = by_symbol["ETHUSDT"]
    assert (sell.side, sell.quantity) == ("sell", Decimal("2"))
    assert float(sell.price) == 3_000.0 * (1 - SLIPPAGE)
    assert abs(float(sell.fee) - 2 * 3_000.0 * (1 - SLIPPAGE) * FEE) < 1e-7
    buy = by_symbol["BTCUSDT"]
    equity = 5_000.0 + 2 * 3_000.0 + 10 * 100.0  # at the open
    assert buy.side == "buy" and float(buy.price) == 60_000.0 * (1 + SLIPPAGE)
    assert abs(float(buy.quantity) - 0.2 * equity / 60_000.0) < 1e-7
    assert abs(float(buy.fee) - float(buy.quantity) * float(buy.price) * FEE) < 1e-7
    assert all(f.executed_at == at and f.trade_id.startswith("paper-2024-05-10-") for f in fills)


def test_a_buy_never_spends_more_cash_than_there_is():
    fills = paper_fills(
        DAY,
        [Target("BTCUSDT", "buy", 1.0)],
        cash=1_000.0,
        positions={},
        opens={"BTCUSDT": 100.0},
        fill_at=fill_time(DAY),
    )
    (buy,) = fills
    assert float(buy.quantity * buy.price + buy.fee) <= 1_000.0
    assert float(buy.quantity * buy.price + buy.fee) > 999.0

"""A small record on a real database, for the record documents' tests (lib/rag/record.py and the
knowledge/record_documents asset): a daily mart of 30 days, one paper account with fills and stop fills, and its
recommendations of a few days.

- BTCUSDT: bought from day 2's recommendation at day 3's open, stopped out the same day (a closed position, a stop
  fill inside day 2's 7-day outcome window); bought again from day 20's recommendation (still open).
- ETHUSDT: bought in two fills (days 11 and 12, from days 10 and 11), closed by a take-profit on day 12.
- Recommendations on days 2, 10, 11, 20 and 25 (day 25's 7-day close is beyond the mart: never known).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

from fks_pipelines.lib.db.portfolio import import_accounts, replace_paper_fills
from fks_pipelines.lib.db.recommendations import decision_time
from fks_pipelines.lib.portfolio.ledger import Account, Trade

T0 = datetime(2024, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
DAYS = 30
SYMBOLS = ("BTCUSDT", "ETHUSDT")
ACCOUNT = "paper-one"
STOP_BAR = timedelta(hours=10, seconds=3599)  # the end of the bar that touched the stop, less one second
TP_BAR = timedelta(hours=23, seconds=3599)


def day(i: int) -> date:
    return (T0 + i * DAY).date()


def close(symbol: str, i: int) -> float:
    base = 100.0 if symbol == "BTCUSDT" else 50.0
    return base * (1 + 0.01 * i) * (1.03 if i % 3 == 0 else 1.0)


def create_daily_mart(conn: psycopg.Connection) -> None:
    """The columns of dbt's marts.fct_ohlcv_1d the record reads (dbt builds the real one)."""
    conn.execute(
        "CREATE TABLE marts.fct_ohlcv_1d (market text, symbol text, bucket timestamptz, open numeric, high numeric,"
        " low numeric, close numeric, volume numeric)"
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO marts.fct_ohlcv_1d VALUES ('spot', %s, %s, %s, %s, %s, %s, 1000)",
            [
                (
                    s,
                    T0 + i * DAY,
                    close(s, i - 1) if i else close(s, 0),
                    close(s, i) * 1.02,
                    close(s, i) * 0.97,
                    close(s, i),
                )
                for s in SYMBOLS
                for i in range(DAYS)
            ],
        )


def fill(trade_id: str, symbol: str, side: str, quantity: str, price: str, at: datetime) -> Trade:
    notional = Decimal(quantity) * Decimal(price)
    return Trade(
        trade_id, symbol, side, Decimal(quantity), Decimal(price), (notional / 1000).quantize(Decimal("1e-8")), at
    )


def paper_fills() -> dict[date, list[Trade]]:
    """The paper fills per decision day (ids paper-<day>-<symbol>[-sl|-tp], as the platform writes them)."""
    return {
        day(2): [
            fill(f"paper-{day(2)}-BTCUSDT", "BTCUSDT", "buy", "10", "103", T0 + 3 * DAY),
            fill(f"paper-{day(2)}-BTCUSDT-sl", "BTCUSDT", "sell", "10", "96.9", T0 + 3 * DAY + STOP_BAR),
        ],
        day(10): [fill(f"paper-{day(10)}-ETHUSDT", "ETHUSDT", "buy", "20", "55", T0 + 11 * DAY)],
        day(11): [
            fill(f"paper-{day(11)}-ETHUSDT", "ETHUSDT", "buy", "20", "56", T0 + 12 * DAY),
            fill(f"paper-{day(11)}-ETHUSDT-tp", "ETHUSDT", "sell", "40", "61.6", T0 + 12 * DAY + TP_BAR),
        ],
        day(20): [fill(f"paper-{day(20)}-BTCUSDT", "BTCUSDT", "buy", "5", "121", T0 + 21 * DAY)],
    }


def write_recommendation(conn: psycopg.Connection, i: int, symbol: str, action: str, rationale: str) -> None:
    d = day(i)
    conn.execute(
        "INSERT INTO recommendations.generations (decision_date, account, generator, model, decided_at, prompt)"
        " VALUES (%s, %s, 'rules', NULL, %s, %s) ON CONFLICT DO NOTHING",
        (d, ACCOUNT, decision_time(d), Jsonb([])),
    )
    conn.execute(
        "INSERT INTO recommendations.daily (decision_date, account, symbol, generator, action, target_allocation,"
        " proposed_allocation, current_allocation, entry, stop_loss, take_profit, horizon_days, confidence,"
        " rationale, reference_price) VALUES (%s, %s, %s, 'rules', %s, %s, %s, 0.0, NULL, %s, %s, 7, 0.6, %s, %s)",
        (
            d,
            ACCOUNT,
            symbol,
            action,
            0.0 if action == "hold" else 0.25,
            0.0 if action == "hold" else 0.3,
            None if action == "hold" else close(symbol, i) * 0.95,
            None if action == "hold" else close(symbol, i) * 1.1,
            rationale,
            close(symbol, i),
        ),
    )


def write_record(conn: psycopg.Connection) -> None:
    """The whole record (mart, account, fills, recommendations), committed."""
    create_daily_mart(conn)
    import_accounts(conn, [Account(ACCOUNT, "personal", Decimal("10000"), T0, mode="paper")], "spot")
    for d, fills in paper_fills().items():
        replace_paper_fills(conn, ACCOUNT, d, fills)
    write_recommendation(conn, 2, "BTCUSDT", "buy", "MA cross fired; trend up. " * 30)
    write_recommendation(conn, 2, "ETHUSDT", "hold", "nothing fired")
    write_recommendation(conn, 10, "ETHUSDT", "buy", "RSI oversold bounce")
    write_recommendation(conn, 11, "ETHUSDT", "buy", "still oversold")
    write_recommendation(conn, 20, "BTCUSDT", "buy", "breakout above the upper band")
    write_recommendation(conn, 25, "BTCUSDT", "sell", "trend broke")
    conn.commit()

"""A backfill over real shared history is point-in-time end to end: perturbing prices from day D on changes no
choice, strategy state, signal, recommendation or paper fill before D (issue 21)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.defs.analytics.assets import market_regimes, signals, strategy_choices
from fks_pipelines.defs.analytics.resources import QuantResource
from fks_pipelines.defs.knowledge.assets import documents
from fks_pipelines.defs.recommendations.assets import daily_recommendations
from fks_pipelines.defs.recommendations.resources import LLMResource, RecommenderResource
from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, NotifierResource, PostgresResource
from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.db.portfolio import import_accounts
from fks_pipelines.lib.portfolio.ledger import Account
from tests.lib.quant.real_hourly import load_marts

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START, END = datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 2, 16, tzinfo=UTC)
D = datetime(2021, 2, 1, tzinfo=UTC)  # a Monday: a decision time
BEFORE_D = {
    "analytics.strategy_choices": (
        "SELECT symbol, decided_at, strategy, params, candidate, dsr, pbo FROM analytics.strategy_choices"
        " WHERE decided_at <= %(d)s ORDER BY 1, 2"
    ),
    "analytics.strategy_state": "SELECT * FROM analytics.strategy_state WHERE bucket < %(d)s ORDER BY bucket, symbol",
    "analytics.signals": "SELECT * FROM analytics.signals WHERE bucket < %(d)s ORDER BY bucket, symbol",
    "recommendations.daily": (
        "SELECT decision_date, account, symbol, action, target_allocation, reference_price, stop_loss, take_profit"
        " FROM recommendations.daily WHERE decision_date < %(d)s ORDER BY 1, 2, 3"
    ),
    "portfolio.trades": (
        "SELECT trade_id, symbol, side, quantity, price, fee, executed_at FROM portfolio.trades"
        " WHERE executed_at < %(d)s ORDER BY executed_at, trade_id"
    ),
}


def backfill(url: str, shared_data, perturb: bool) -> dict[str, list]:
    with connect(url) as conn:
        load_marts(conn, shared_data, SYMBOLS, START, END)
        import_accounts(conn, [Account("paper", "personal", Decimal(10_000), START, [], mode="paper")], "spot")
        if perturb:
            with conn.transaction():
                conn.execute(
                    "UPDATE marts.fct_ohlcv_1h SET open = open * 1.5, high = high * 1.5, low = low * 1.5,"
                    " close = close * 1.5 WHERE bucket >= %s",
                    (D,),
                )
                conn.execute(
                    "UPDATE marts.fct_ohlcv_1d SET open = open * 1.5, high = high * 1.5, low = low * 1.5,"
                    " close = close * 1.5 WHERE bucket >= %s",
                    (D,),
                )
    result = materialize(
        [strategy_choices, signals, market_regimes, documents, daily_recommendations],
        instance=DagsterInstance.ephemeral(),
        resources={
            "database": PostgresResource(url=url),
            "market_data": MarketDataResource(symbols=SYMBOLS),
            "quant": QuantResource(),
            "embedding_model": EmbeddingModelResource(device="cpu"),
            "llm": LLMResource(),
            "recommender": RecommenderResource(),
            "notifier": NotifierResource(),
        },
        tags={ASSET_PARTITION_RANGE_START_TAG: "2021-01-11", ASSET_PARTITION_RANGE_END_TAG: "2021-02-14"},
        run_config={"ops": {"analytics__strategy_choices": {"config": {"strategies": ["rsi_reversion"]}}}},
    )
    assert result.success
    with connect(url) as conn:
        return {table: conn.execute(query, {"d": D}).fetchall() for table, query in BEFORE_D.items()}


def test_prices_from_day_d_on_change_nothing_decided_before_d(databases, shared_data):
    urls = [databases.create(), databases.create()]
    try:
        plain, perturbed = backfill(urls[0], shared_data, False), backfill(urls[1], shared_data, True)
    finally:
        for url in urls:
            databases.drop(url)
    for table, rows in plain.items():
        assert rows, f"{table} has nothing before {D:%Y-%m-%d}: the test would prove nothing"
        assert perturbed[table] == rows, table
    # Every Monday from the end of the warm-up decided, per symbol (2021-01-11 .. 2021-02-01 up to D).
    assert {(r[0], r[1].date().isoformat()) for r in plain["analytics.strategy_choices"]} == {
        (s, d) for s in SYMBOLS for d in ("2021-01-11", "2021-01-18", "2021-01-25", "2021-02-01")
    }

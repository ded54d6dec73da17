"""The portfolio layer: what the accounts hold and what moves between them. Its tables (``portfolio.*``: accounts,
deposits, trades, profit splits) are the platform's own and never readable by the analyst role."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from fks_pipelines.defs.shared import (
    OWNERS,
    MarketDataResource,
    PostgresResource,
    one_run_at_a_time,
    table_metadata,
)
from fks_pipelines.lib.db.marts import latest_day
from fks_pipelines.lib.db.portfolio import account_states, equity, replace_profit_splits
from fks_pipelines.lib.portfolio.sizing import profit_split, split_month

TABLE = "portfolio.profit_splits"
TRANSFER_COLUMNS = (
    TableColumn("account", "string"),
    TableColumn("profit", "float", description="last complete month's profit, USDT"),
    TableColumn("transfer_to_long_term", "float", description="to move to the long-term account, USDT"),
    TableColumn("to", "string", description="the long-term account"),
)


@asset(
    key_prefix="portfolio",
    group_name="portfolio",
    deps=[AssetKey(["marts", "fct_ohlcv_1d"])],
    kinds={"postgres"},
    owners=OWNERS,
    description=(
        "The monthly 50/50 profit split: for each trading account (personal, prop firm), half of last complete "
        "month's profit goes to the long-term account, half stays to trade. Writes portfolio.profit_splits with "
        "the transfer to make (it does not move money)."
    ),
)
@one_run_at_a_time
def profit_splits(
    context: AssetExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> MaterializeResult:
    with database.connection() as conn:
        latest = latest_day(conn, market_data.market)
        if latest is None:
            return MaterializeResult(
                metadata={**table_metadata(conn, TABLE), "accounts_split": 0, "note": "no market data yet"}
            )
        month_start, month_end = split_month(latest)
        start_states = {s.account: s for s in account_states(conn, month_start)}
        end_states = account_states(conn, month_end)
        long_term = next((s.account for s in end_states if s.kind == "long_term"), None)
        rows = []
        for end in end_states:
            if end.kind == "long_term":
                continue
            start = start_states.get(end.account)
            equity_start = equity(conn, start, month_start) if start else 0.0
            equity_end = equity(conn, end, month_end)
            net = end.net_deposits - (start.net_deposits if start else 0.0)
            profit, transfer = profit_split(equity_start, equity_end, net)
            rows.append((month_start.date(), end.account, long_term, equity_start, equity_end, net, profit, transfer))
        replace_profit_splits(conn, month_start.date(), rows)
        catalog = table_metadata(conn, TABLE)
    records = [
        TableRecord({"account": r[1], "profit": round(r[6], 2), "transfer_to_long_term": round(r[7], 2), "to": r[2]})
        for r in rows
    ]
    return MaterializeResult(
        metadata={
            **catalog,
            "month": f"{month_start:%Y-%m}",
            "accounts_split": len(rows),
            "transfer_total": round(sum(r[7] for r in rows), 2),
            "transfers": MetadataValue.table(records, schema=TableSchema(columns=list(TRANSFER_COLUMNS))),
        }
    )

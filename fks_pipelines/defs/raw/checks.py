"""Data-quality checks on the raw klines of the materialized days (Great Expectations does the row rules)."""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, Field, MetadataValue, asset_check

from fks_pipelines.defs.raw.assets import binance_klines
from fks_pipelines.defs.shared import MarketDataResource, PostgresResource, daily_partitions
from fks_pipelines.lib.db.raw import read_klines, scope_summary
from fks_pipelines.lib.quality.rules import DEFAULT_PRICE_JUMP_THRESHOLD, validate_bar_rules
from fks_pipelines.lib.sources.frame import LoadScope


def _scope(context: AssetCheckExecutionContext, market_data: MarketDataResource) -> LoadScope:
    window = context.partition_time_window
    return LoadScope(market_data.market, market_data.interval, tuple(market_data.symbols), window.start, window.end)


def _rules_result(
    context,
    database,
    market_data,
    rules: list[str],
    threshold: float = DEFAULT_PRICE_JUMP_THRESHOLD,
    severity=AssetCheckSeverity.ERROR,
) -> AssetCheckResult:
    scope = _scope(context, market_data)
    with database.connection() as conn:
        frame = read_klines(conn, scope)
    results = validate_bar_rules(frame, price_jump_threshold=threshold)
    chosen = [results[r] for r in rules]
    failing = {r.name: r.failing_rows for r in chosen}
    examples = [e for r in chosen for e in r.examples][:5]
    return AssetCheckResult(
        passed=all(r.passed for r in chosen),
        severity=severity,
        metadata={
            "rows_checked": frame.height,
            "failing_rows": MetadataValue.json(failing),
            "examples": MetadataValue.json(examples),
            "window": f"{scope.start:%Y-%m-%d} .. {scope.end:%Y-%m-%d}",
        },
    )


@asset_check(
    asset=binance_klines,
    partitions_def=daily_partitions,
    description="No two rows share (market, symbol, interval, open_time).",
)
def unique_natural_key(
    context: AssetCheckExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> AssetCheckResult:
    return _rules_result(context, database, market_data, ["unique_natural_key"])


@asset_check(
    asset=binance_klines,
    partitions_def=daily_partitions,
    description="Every day has every bar (1440 one-minute bars per symbol); missing bars are listed.",
)
def complete_days(
    context: AssetCheckExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> AssetCheckResult:
    scope = _scope(context, market_data)
    with database.connection() as conn:
        summaries = scope_summary(conn, scope)
    missing = {s.symbol: s.missing_bars for s in summaries}
    ranges = [f"{s.symbol}: {a:%Y-%m-%d %H:%M} .. {b:%Y-%m-%d %H:%M}" for s in summaries for a, b in s.missing_ranges]
    return AssetCheckResult(
        passed=sum(missing.values()) == 0,
        metadata={
            "missing_bars": MetadataValue.json(missing),
            "missing_ranges": MetadataValue.md("\n".join(f"- {r}" for r in ranges[:50]) or "none"),
            "rows": MetadataValue.json({s.symbol: s.rows for s in summaries}),
        },
    )


@asset_check(
    asset=binance_klines,
    partitions_def=daily_partitions,
    description="high >= max(open, close) and low <= min(open, close) on every bar.",
)
def ohlc_consistent(
    context: AssetCheckExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> AssetCheckResult:
    return _rules_result(context, database, market_data, ["high_not_below_open_close", "low_not_above_open_close"])


@asset_check(
    asset=binance_klines,
    partitions_def=daily_partitions,
    description="Volumes, taker volumes and trade counts are never negative.",
)
def volumes_non_negative(
    context: AssetCheckExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> AssetCheckResult:
    return _rules_result(
        context,
        database,
        market_data,
        [
            "volume_non_negative",
            "quote_volume_non_negative",
            "taker_buy_base_non_negative",
            "taker_buy_quote_non_negative",
            "trades_non_negative",
        ],
    )


@asset_check(
    asset=binance_klines,
    partitions_def=daily_partitions,
    description="close_time = open_time + interval - 1 ms on every bar (Binance's convention).",
)
def close_time_consistent(
    context: AssetCheckExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> AssetCheckResult:
    return _rules_result(context, database, market_data, ["close_time_is_open_plus_interval_minus_1ms"])


@asset_check(
    asset=binance_klines,
    partitions_def=daily_partitions,
    description="Bar-to-bar close moves above the threshold are flagged (a warning: real markets do jump).",
    config_schema={
        "price_jump_threshold": Field(
            float, default_value=DEFAULT_PRICE_JUMP_THRESHOLD, description="Relative move, e.g. 0.1 = 10%."
        )
    },
)
def price_jumps(
    context: AssetCheckExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> AssetCheckResult:
    threshold = context.op_execution_context.op_config["price_jump_threshold"]
    return _rules_result(
        context,
        database,
        market_data,
        ["price_jump_within_threshold"],
        threshold=threshold,
        severity=AssetCheckSeverity.WARN,
    )


raw_checks = [
    unique_natural_key,
    complete_days,
    ohlc_consistent,
    volumes_non_negative,
    close_time_consistent,
    price_jumps,
]

"""The raw layer: Binance klines landed in ``raw.binance_klines``, one UTC day per partition."""

from datetime import date, datetime, timedelta

from dagster import AssetExecutionContext, BackfillPolicy, Config, MaterializeResult, asset
from pydantic import Field

from fks_pipelines.defs.raw.metadata import day_metadata
from fks_pipelines.defs.shared import OWNERS, MarketDataResource, PostgresResource, daily_partitions, table_metadata
from fks_pipelines.lib.db.raw import TABLE, scope_summary
from fks_pipelines.lib.sources.load import load_day
from fks_pipelines.lib.symbols import check_symbol


class RawKlinesConfig(Config):
    symbols: list[str] | None = Field(
        default=None, description="Narrow this run to these symbols (default: the whole configured universe)."
    )
    force: bool = Field(
        default=False,
        description="Replace a day even with fewer bars than it already holds (normally refused unless the source "
        "proves the missing bars do not exist).",
    )


def run_symbols(config: RawKlinesConfig, market_data: MarketDataResource) -> list[str]:
    universe = [check_symbol(s.upper(), where="market_data.symbols") for s in market_data.symbols]
    if not config.symbols:
        return universe
    wanted = [check_symbol(s.upper(), where="run config symbols") for s in config.symbols]
    unknown = sorted(set(wanted) - set(universe))
    if unknown:
        raise ValueError(f"symbols {unknown} are not in the configured universe {universe}; add them to FKS_SYMBOLS")
    return wanted


def days_in(window_start: datetime, window_end: datetime) -> list[date]:
    days, day = [], window_start.date()
    while day < window_end.date():
        days.append(day)
        day += timedelta(days=1)
    return days


@asset(
    key_prefix="raw",
    name="binance_klines",
    group_name="raw",
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"postgres", "polars"},
    owners=OWNERS,
    description=(
        "Binance klines (1-minute bars by default) for the configured symbol universe, as landed in "
        "raw.binance_klines. Each UTC day is replaced atomically: re-materializing a partition gives exactly "
        "the same rows, and a failed load leaves the previous rows in place."
    ),
)
def binance_klines(
    context: AssetExecutionContext,
    config: RawKlinesConfig,
    database: PostgresResource,
    market_data: MarketDataResource,
) -> MaterializeResult:
    symbols = run_symbols(config, market_data)
    window = context.partition_time_window
    days = days_in(window.start, window.end)
    source = market_data.build()
    loaded, deleted, missing = 0, 0, 0
    with database.connection() as conn:
        for i, day in enumerate(days, start=1):
            result, batch = load_day(
                conn,
                source,
                market_data.market,
                market_data.interval,
                symbols,
                day,
                force=config.force,
                partition_key=day.isoformat(),
                run_id=context.run.run_id,
            )
            loaded += result.rows_loaded
            deleted += result.rows_deleted
            summaries = scope_summary(conn, result.scope, max_ranges=3)
            missing += sum(s.missing_bars for s in summaries)
            # This partition's own metadata: its rows, bars and gaps (the run's totals are labelled run_*).
            day_meta = day_metadata(result.rows_loaded, result.rows_deleted, summaries, batch.frame)
            context.add_asset_metadata(day_meta, partition_key=day.isoformat())
            context.log.info(f"[{i}/{len(days)}] {day}: {result.rows_loaded} rows ({result.duration_s:.2f}s)")
        # The table's name and columns (its row count is each partition's, above).
        table = table_metadata(conn, TABLE)
        del table["dagster/row_count"]
    return MaterializeResult(
        metadata={
            **table,
            "run_rows_loaded": loaded,
            "run_rows_replaced": deleted,
            "run_days": len(days),
            "run_first_day": days[0].isoformat() if days else "none",
            "run_last_day": days[-1].isoformat() if days else "none",
            "run_missing_bars": missing,
            "symbols": ", ".join(symbols),
            "source": source.name,
            "market": market_data.market,
            "interval": market_data.interval,
        }
    )

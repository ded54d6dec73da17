"""The raw layer: Binance klines landed in ``raw.binance_klines``, one UTC day per partition."""

from datetime import date, datetime, timedelta

import polars as pl
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from fks_pipelines.defs.shared import MarketDataResource, PostgresResource, daily_partitions
from fks_pipelines.lib.db.raw import load_day, scope_summary
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


def preview_markdown(frame: pl.DataFrame, rows: int = 5) -> str:
    head = frame.head(rows)
    header = "| " + " | ".join(head.columns) + " |"
    rule = "|" + "---|" * len(head.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in head.iter_rows()]
    return "\n".join([header, rule, *body])


@asset(
    key_prefix="raw",
    name="binance_klines",
    group_name="raw",
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"postgres", "polars"},
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
    per_symbol: dict[str, int] = dict.fromkeys(symbols, 0)
    first_bar = last_bar = None
    gap_notes: list[str] = []
    preview = None
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
            scope = result.scope
            loaded += result.rows_loaded
            deleted += result.rows_deleted
            for summary in scope_summary(conn, scope, max_ranges=3):
                per_symbol[summary.symbol] += summary.rows
                missing += summary.missing_bars
                if summary.first_bar and (first_bar is None or summary.first_bar < first_bar):
                    first_bar = summary.first_bar
                if summary.last_bar and (last_bar is None or summary.last_bar > last_bar):
                    last_bar = summary.last_bar
                for start, end in summary.missing_ranges:
                    if len(gap_notes) < 20:
                        gap_notes.append(f"{summary.symbol} {start:%Y-%m-%d %H:%M} .. {end:%H:%M}")
            if preview is None and batch.frame.height:
                preview = batch.frame
            context.log.info(f"[{i}/{len(days)}] {day}: {result.rows_loaded} rows ({result.duration_s:.2f}s)")
    return MaterializeResult(
        metadata={
            "dagster/row_count": loaded,
            "rows_replaced": deleted,
            "days": len(days),
            "symbols": ", ".join(symbols),
            "rows_per_symbol": MetadataValue.json(per_symbol),
            "first_bar": first_bar.isoformat() if first_bar else "none",
            "last_bar": last_bar.isoformat() if last_bar else "none",
            "missing_bars": missing,
            "gaps": MetadataValue.md("\n".join(f"- {g}" for g in gap_notes) or "none"),
            "source": source.name,
            "market": market_data.market,
            "interval": market_data.interval,
            "preview": MetadataValue.md(preview_markdown(preview) if preview is not None else "no rows"),
        }
    )

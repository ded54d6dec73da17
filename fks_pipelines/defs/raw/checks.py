"""Data-quality checks on the raw klines a run loaded (Great Expectations does the row rules).

The six checks are one ``@multi_asset_check`` step: the rows are read and validated once, and each check
reports its own result. They are unpartitioned checks on the partitioned asset, over the days the run
materialized (its partition or partition range); executed alone ("Execute all" in the UI), over the days of
the asset's latest materialization run. Why not per partition: in Dagster 1.13 a check result carries the
step's single partition key, so a single-run range step (the asset's backfill policy) cannot report one
result per day, and each planned per-partition check would stay without a result ("Skipped").
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    DagsterInstance,
    Field,
    MetadataValue,
    multi_asset_check,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from fks_pipelines.defs.raw.assets import binance_klines
from fks_pipelines.defs.shared import MarketDataResource, PostgresResource
from fks_pipelines.lib.db.raw import SymbolSummary, confirmed_gaps, incomplete_days, read_klines, scope_summary
from fks_pipelines.lib.klines import LoadScope, bars_per_day
from fks_pipelines.lib.quality.rules import DEFAULT_PRICE_JUMP_THRESHOLD, validate_bar_rules

# Check name -> (description, the row rules of lib/quality/rules.py it reports; complete_days is a SQL summary).
CHECKS: dict[str, tuple[str, list[str]]] = {
    "unique_natural_key": ("No two rows share (market, symbol, interval, open_time).", ["unique_natural_key"]),
    "complete_days": (
        "Every day has every bar (1440 one-minute bars per symbol); missing bars are listed. Bars a source proved"
        " do not exist (exchange outages, raw.known_gaps) are known gaps: a warning that lists them.",
        [],
    ),
    "ohlc_consistent": (
        "high >= max(open, close) and low <= min(open, close) on every bar.",
        ["high_not_below_open_close", "low_not_above_open_close"],
    ),
    "volumes_non_negative": (
        "Volumes, taker volumes and trade counts are never negative.",
        [
            "volume_non_negative",
            "quote_volume_non_negative",
            "taker_buy_base_non_negative",
            "taker_buy_quote_non_negative",
            "trades_non_negative",
        ],
    ),
    "close_time_consistent": (
        "close_time = open_time + interval - 1 ms on every bar (Binance's convention).",
        ["close_time_is_open_plus_interval_minus_1ms"],
    ),
    "price_jumps": (
        "Bar-to-bar close moves above the threshold are flagged (a warning: real markets do jump).",
        ["price_jump_within_threshold"],
    ),
}
WARNINGS = {"price_jumps"}


def _day_range(tags: dict[str, str]) -> tuple[str, str] | None:
    if PARTITION_NAME_TAG in tags:
        return tags[PARTITION_NAME_TAG], tags[PARTITION_NAME_TAG]
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
    return None


def checked_days(tags: dict[str, str], instance: DagsterInstance) -> tuple[str, str] | None:
    """First and last day (partition keys) to check: the run's own, else those of the asset's latest
    materialization run; None when the asset was never materialized."""
    days = _day_range(tags)
    if days is not None:
        return days
    event = instance.get_latest_materialization_event(binance_klines.key)
    if event is None:
        return None
    run = instance.get_run_by_id(event.run_id)
    days = _day_range(dict(run.tags)) if run is not None else None
    if days is None and event.asset_materialization and event.asset_materialization.partition:
        days = (event.asset_materialization.partition, event.asset_materialization.partition)
    return days


@multi_asset_check(
    name="raw_klines_checks",
    specs=[AssetCheckSpec(name, asset=binance_klines, description=text) for name, (text, _) in CHECKS.items()],
    description="The raw klines' row rules and completeness over the days the run loaded, in one step.",
    config_schema={
        "price_jump_threshold": Field(
            float, default_value=DEFAULT_PRICE_JUMP_THRESHOLD, description="Relative move, e.g. 0.1 = 10%."
        )
    },
)
def raw_klines_checks(
    context: AssetCheckExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> Iterable[AssetCheckResult]:
    days = checked_days(dict(context.run.tags), context.instance)
    if days is None:
        for name in CHECKS:
            yield AssetCheckResult(
                check_name=name, passed=True, description="Nothing materialized yet: no rows to check."
            )
        return
    first, last = (datetime.fromisoformat(d).replace(tzinfo=UTC) for d in days)
    scope = LoadScope(
        market_data.market, market_data.interval, tuple(market_data.symbols), first, last + timedelta(days=1)
    )
    threshold = context.op_execution_context.op_config["price_jump_threshold"]
    bars = bars_per_day(scope.interval)
    with database.connection() as conn:
        frame = read_klines(conn, scope)
        summaries = scope_summary(conn, scope)
        # Short days (bars a source proved absent count as present) that a re-fetch confirmed short: real gaps too.
        short = (
            incomplete_days(conn, scope.market, scope.interval, list(scope.symbols), first.date(), last.date(), bars)
            if bars
            else []
        )
        confirmed = confirmed_gaps(conn, scope.market, scope.interval, [(s, d) for s, d, _ in short])
    results = validate_bar_rules(frame, price_jump_threshold=threshold)
    window: dict[str, Any] = {
        "first_day": MetadataValue.text(days[0]),
        "last_day": MetadataValue.text(days[1]),
        "days_checked": (last - first).days + 1,
        "rows_checked": frame.height,
    }
    for name, (_, rules) in CHECKS.items():
        if name == "complete_days":
            yield complete_days_result(window, summaries, short, confirmed, bars)
            continue
        chosen = [results[r] for r in rules]
        yield AssetCheckResult(
            check_name=name,
            passed=all(r.passed for r in chosen),
            severity=AssetCheckSeverity.WARN if name in WARNINGS else AssetCheckSeverity.ERROR,
            metadata={
                **window,
                "failing_rows_total": sum(r.failing_rows for r in chosen),
                "failing_rows": MetadataValue.json({r.name: r.failing_rows for r in chosen}),
                "examples": MetadataValue.json([e for r in chosen for e in r.examples][:5]),
                **({"price_jump_threshold": threshold} if name in WARNINGS else {}),
            },
        )


def complete_days_result(
    window: dict[str, Any],
    summaries: list[SymbolSummary],
    short: list[tuple[str, date, int]],
    confirmed: set[tuple[str, date]],
    bars: int | None,
) -> AssetCheckResult:
    """complete_days over the checked ``window``: passes when no bar is missing. Missing bars a source proved do not
    exist (exchange outages, raw.known_gaps), and short days a re-fetch confirmed short (``short`` that are in
    ``confirmed``), are known gaps: a warning that lists them; any other missing bar fails the check."""
    missing = {s.symbol: s.missing_bars for s in summaries}
    known = {s.symbol: s.known_gap_bars for s in summaries}
    refetched = [(s, d, n) for s, d, n in short if (s, d) in confirmed]
    refetched_bars = sum(bars - n for _, _, n in refetched) if bars else 0
    unexplained = sum(missing.values()) - sum(known.values()) - refetched_bars
    ranges = [f"{s.symbol}: {a:%Y-%m-%d %H:%M} .. {b:%Y-%m-%d %H:%M}" for s in summaries for a, b in s.missing_ranges]
    known_ranges = [
        f"{s.symbol}: {a:%Y-%m-%d %H:%M} .. {b:%Y-%m-%d %H:%M}" for s in summaries for a, b in s.known_gap_ranges
    ] + [f"{s} {d}: {n} of {bars} bars (confirmed by a re-fetch)" for s, d, n in refetched]
    return AssetCheckResult(
        check_name="complete_days",
        passed=sum(missing.values()) == 0,
        severity=AssetCheckSeverity.WARN if unexplained == 0 else AssetCheckSeverity.ERROR,
        metadata={
            **window,
            "missing_bars_total": sum(missing.values()),
            "missing_bars": MetadataValue.json(missing),
            "missing_ranges": MetadataValue.md("\n".join(f"- {r}" for r in ranges[:50]) or "none"),
            "known_gap_bars_total": sum(known.values()) + refetched_bars,
            "known_gaps": MetadataValue.md("\n".join(f"- {r}" for r in known_ranges[:50]) or "none"),
            "rows": MetadataValue.json({s.symbol: s.rows for s in summaries}),
        },
    )


raw_checks = [raw_klines_checks]

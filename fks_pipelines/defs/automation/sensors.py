"""Sensors: heal gaps in the raw layer, backfill newly configured symbols, import landed archive files, and
tell people (``NotifierResource``: Discord) when a run fails (a run past its max runtime too: run monitoring marks
it failed) or an asset check starts failing (freshness checks included: a stale asset).

Each sensor is built by a function from what it needs (windows, folders, whether it runs by default), which
``build_sensors`` reads from the settings once, when the definitions are built; the bodies read no settings.

How a backfill is launched (gaps, new symbols): one run over a partition range
(``ASSET_PARTITION_RANGE_START_TAG``/``END_TAG``) of ``daily_job``. Of the 1.13 options this is the public one
that makes "one backfill, not a storm": every asset in the job has a single-run backfill policy and handles a
range in one pass, so N missing days are one run (not N ``RunRequest(partition_key=...)`` runs); the private
``RunRequest.for_asset_graph_subset`` would give a UI backfill object but is not a public API; declarative
automation's backfills would re-evaluate the whole graph's conditions instead of the days we know are missing.
Each request has a ``run_key`` derived from what it heals, so the same gap (or symbol) is never requested twice,
and the range is bounded by the sensor's window. Bars a source proved do not exist (``raw.known_gaps``: exchange
outages in a freqtrade file's range) count as present, and a day that is still short after a source that proves
nothing was asked for it twice (``lib.db.raw.confirmed_gaps``: a real exchange gap) is not requested again, even
when the window moves and the set of gaps (so the run key) changes.
"""

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.defs.automation.jobs import archive_import_job, daily_job
from fks_pipelines.defs.shared import MarketDataResource, NotifierResource, PostgresResource, check_outcomes
from fks_pipelines.lib.db.raw import confirmed_gaps, incomplete_days, symbols_with_data
from fks_pipelines.lib.klines import bars_per_day
from fks_pipelines.lib.notify import dump_cursor, load_cursor, new_problems, problem_message, run_failure_message
from fks_pipelines.lib.sources.landing import landed_files
from fks_pipelines.settings import Settings

RAW_OP = "raw__binance_klines"


def default_status(automation: bool) -> DefaultSensorStatus:
    """Running by default in production (FKS_AUTOMATION=on); stopped in dev and the demo, started from the UI."""
    return DefaultSensorStatus.RUNNING if automation else DefaultSensorStatus.STOPPED


def build_sensors(settings: Settings) -> list[SensorDefinition]:
    """Every sensor of this module, configured from ``settings``."""
    status = default_status(settings.automation)
    if settings.landing_dir is None:  # the settings model defaults it to $FKS_HOME/landing
        raise RuntimeError("no landing folder: FKS_LANDING_DIR resolved to nothing")
    return [
        build_gap_sensor(settings.gap_window_days, status),
        build_new_symbol_sensor(settings.new_symbol_history_days, status),
        build_archive_landing_sensor(settings.landing_dir, status),
        build_run_failure_sensor(status),
        build_check_failure_sensor(status),
    ]


def range_request(run_key: str, first: date, last: date, symbols: list[str], trigger: str) -> RunRequest:
    """One run of daily_job over [first, last], its raw step narrowed to ``symbols`` (the rest is idempotent)."""
    return RunRequest(
        run_key=run_key,
        run_config={"ops": {RAW_OP: {"config": {"symbols": symbols}}}},
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            "fks/trigger": trigger,
        },
    )


def _yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def build_gap_sensor(window_days: int, status: DefaultSensorStatus = DefaultSensorStatus.STOPPED) -> SensorDefinition:
    """Heals missing or incomplete days of the last ``window_days`` (FKS_GAP_WINDOW_DAYS)."""

    @sensor(
        job=daily_job,
        minimum_interval_seconds=3600,
        default_status=status,
        description=f"Missing or incomplete days per symbol in the last {window_days} day(s) (FKS_GAP_WINDOW_DAYS):"
        " one range run heals them.",
    )
    def gap_sensor(context: SensorEvaluationContext, database: PostgresResource, market_data: MarketDataResource):
        bars = bars_per_day(market_data.interval)
        if bars is None:
            return SkipReason(f"gap detection needs an interval that tiles a day, not {market_data.interval}")
        last = _yesterday()
        first = last - timedelta(days=window_days - 1)
        with database.connection() as conn:
            known = symbols_with_data(conn, market_data.market, market_data.interval)
            followed = [s for s in market_data.symbols if s in known]  # no data at all: the new-symbol sensor's
            gaps = (
                incomplete_days(conn, market_data.market, market_data.interval, followed, first, last, bars)
                if followed
                else []
            )
            # Days a re-fetch already confirmed short (exchange outages): asking again would loop for ever.
            confirmed = confirmed_gaps(conn, market_data.market, market_data.interval, [(s, d) for s, d, _ in gaps])
        gaps = [g for g in gaps if (g[0], g[1]) not in confirmed]
        if not gaps:
            return SkipReason(
                f"no missing or incomplete day for {len(followed)} symbol(s) in {first} .. {last}"
                + (f" ({len(confirmed)} known gap(s), confirmed by a re-fetch)" if confirmed else "")
            )
        days = sorted({d for _, d, _ in gaps})
        symbols = sorted({s for s, _, _ in gaps})
        fingerprint = hashlib.sha256(json.dumps([(s, str(d)) for s, d, _ in gaps]).encode()).hexdigest()[:16]
        context.log.info(f"{len(gaps)} incomplete symbol-day(s) between {days[0]} and {days[-1]}: {symbols}")
        return range_request(f"gaps:{fingerprint}", days[0], days[-1], symbols, "gap_sensor")

    return gap_sensor


def build_new_symbol_sensor(
    history_days: int, status: DefaultSensorStatus = DefaultSensorStatus.STOPPED
) -> SensorDefinition:
    """Gives a symbol added to the universe ``history_days`` of history (FKS_NEW_SYMBOL_HISTORY_DAYS)."""

    @sensor(
        job=daily_job,
        minimum_interval_seconds=600,
        default_status=status,
        description=f"A symbol added to the universe (FKS_SYMBOLS) gets {history_days} day(s) of history"
        " (FKS_NEW_SYMBOL_HISTORY_DAYS).",
    )
    def new_symbol_sensor(
        context: SensorEvaluationContext, database: PostgresResource, market_data: MarketDataResource
    ):
        with database.connection() as conn:
            known = symbols_with_data(conn, market_data.market, market_data.interval)
        new = [s for s in market_data.symbols if s not in known]
        if not new:
            return SkipReason("every configured symbol has data")
        last = _yesterday()
        first = last - timedelta(days=history_days - 1)
        return [
            range_request(f"new-symbol:{market_data.market}:{s}:{history_days}", first, last, [s], "new_symbol_sensor")
            for s in new
        ]

    return new_symbol_sensor


def build_archive_landing_sensor(
    landing: Path, status: DefaultSensorStatus = DefaultSensorStatus.STOPPED
) -> SensorDefinition:
    """Imports archive files dropped into ``landing`` (FKS_LANDING_DIR); the run's config names the folder."""

    @sensor(
        job=archive_import_job,
        minimum_interval_seconds=60,
        default_status=status,
        description=f"Archive files dropped into {landing} (FKS_LANDING_DIR) are imported, then moved to imported/"
        " or quarantine/.",
    )
    def archive_landing_sensor(context: SensorEvaluationContext):
        files = landed_files(landing)
        if not files:
            return SkipReason(f"nothing in {landing}")
        stamp = ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
        config = {"landing_dir": str(landing), "files": [p.name for p in files]}
        return RunRequest(
            run_key="landing:" + hashlib.sha256(stamp.encode()).hexdigest()[:16],
            run_config={"ops": {"import_landed_files": {"config": config}}},
            tags={"fks/trigger": "archive_landing_sensor"},
        )

    return archive_landing_sensor


def build_run_failure_sensor(status: DefaultSensorStatus = DefaultSensorStatus.STOPPED) -> SensorDefinition:
    @run_failure_sensor(
        name="run_failure_to_discord",
        default_status=status,
        description="Posts every failed run to DISCORD_WEBHOOK_URL (skipped, with a log line, when unset).",
    )
    def run_failure_to_discord(context: RunFailureSensorContext, notifier: NotifierResource):
        run = context.dagster_run
        message = run_failure_message(run.job_name, run.run_id, context.failure_event.message)
        notifier.post(f"run {run.run_id} of {run.job_name} failed", message, context.log)

    return run_failure_to_discord


def build_check_failure_sensor(status: DefaultSensorStatus = DefaultSensorStatus.STOPPED) -> SensorDefinition:
    @sensor(
        name="check_failures_to_discord",
        minimum_interval_seconds=120,
        default_status=status,
        description="Posts each failing asset check (data quality or freshness: a stale asset) to DISCORD_WEBHOOK_URL"
        " once, when it starts failing, with a link to the asset; quiet while it keeps failing.",
    )
    def check_failures_to_discord(context: SensorEvaluationContext, notifier: NotifierResource):
        after, announced = load_cursor(context.cursor)
        outcomes, last = check_outcomes(context.instance, after=after)
        fresh, announced = new_problems(announced, outcomes)
        posted = sum(notifier.post(f"{o.key} failing", problem_message(o, notifier.ui_url), context.log) for o in fresh)
        context.update_cursor(dump_cursor(last, announced))
        return SkipReason(f"{len(outcomes)} check evaluation(s) read, {len(fresh)} new problem(s), {posted} posted")

    return check_failures_to_discord

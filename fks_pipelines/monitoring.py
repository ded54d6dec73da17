"""Gathers the platform's state for `fks metrics` and `fks status`: the data database through the schema stores
(one grouped query each, whatever the number of symbols) and the Dagster instance (materializations, check
evaluations, runs). A part that cannot be read is reported as down (``fks_database_up``/``fks_dagster_instance_up``
= 0, a `fail` row) rather than failing the scrape.

Why not dagster-prometheus: it is an op-level resource for pushing metrics from inside runs, not an exporter of
the instance's state, so it serves none of these needs; Dagster itself exports no Prometheus metrics.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import psycopg
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from fks_pipelines.defs.shared import check_outcomes
from fks_pipelines.lib.db import knowledge, raw, recommendations
from fks_pipelines.lib.db.connect import connect, one_row
from fks_pipelines.lib.errors import FksError
from fks_pipelines.lib.klines import interval_timedelta
from fks_pipelines.lib.metrics import AssetFreshness, PlatformSnapshot, RunSummary, SymbolRows
from fks_pipelines.settings import Settings

RUN_WINDOW = 200  # recent runs read for run metrics


def snapshot(settings: Settings, data_url: str, instance: DagsterInstance | None) -> PlatformSnapshot:
    now = datetime.now(UTC)
    snap = PlatformSnapshot(
        taken_at=now,
        database_ok=True,
        llm_configured=bool(settings.llm_base_url) or settings.llm_engine == "in_process",
    )
    try:
        with connect(data_url, application_name="fks_metrics") as conn:
            _read_database(conn, settings, snap, now)
    except (psycopg.Error, FksError) as exc:
        snap.database_ok, snap.database_error = False, " ".join(str(exc).split())[:300]
    if instance is None:
        snap.dagster_ok, snap.dagster_error = False, "no Dagster instance (DAGSTER_HOME unset)"
    else:
        try:
            _read_instance(instance, snap, now)
        except Exception as exc:  # any storage error: report the instance as down, keep the rest
            snap.dagster_ok, snap.dagster_error = False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return snap


def _read_database(conn: psycopg.Connection, settings: Settings, snap: PlatformSnapshot, now: datetime) -> None:
    step = interval_timedelta(settings.interval)
    if _exists(conn, "raw.binance_klines"):
        snap.symbols = [
            SymbolRows(h.symbol, h.rows, h.missing_bars, (now - (h.last_open + step)).total_seconds())
            for h in raw.symbol_health(conn, settings.market, settings.interval)
        ]
    if _exists(conn, "raw.ingest_log"):
        snap.ingest = raw.ingest_totals(conn)
    if _exists(conn, "recommendations.daily"):
        snap.recommendations = recommendations.recommendation_counts(conn)
        stats = recommendations.llm_stats(conn)
        snap.llm_generations, snap.llm_answers = stats.generations, stats.llm_answers
        snap.llm_failures, snap.llm_fallbacks = stats.failures, stats.fallbacks
        snap.llm_latencies_s = [ms / 1000 for ms in stats.latencies_ms]
        snap.llm_last_error = stats.last_error
        snap.guard_day = recommendations.last_decision_day(conn)
        if snap.guard_day is not None and _exists(conn, "recommendations.guards"):
            snap.guard_acts = recommendations.guard_acts(conn, since=snap.guard_day)
    if _exists(conn, "knowledge.documents"):
        snap.embedding_backlog = knowledge.embedding_backlog(conn)


def _exists(conn: psycopg.Connection, table: str) -> bool:
    return bool(one_row(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)))[0])


def _read_instance(instance: DagsterInstance, snap: PlatformSnapshot, now: datetime) -> None:
    for record in instance.get_asset_records():
        entry = record.asset_entry
        last = entry.last_materialization
        if last is None:
            continue
        key: AssetKey = entry.asset_key
        _read_failed_strategies(key, last, snap)
        latest_partition = (
            _latest_day(instance.get_materialized_partitions(key))
            if last.dagster_event and last.dagster_event.partition
            else None
        )
        if latest_partition is not None:
            end = datetime.combine(latest_partition + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
            lag = (now - end).total_seconds()
        else:
            lag = now.timestamp() - last.timestamp
        snap.freshness.append(
            AssetFreshness(key.to_user_string(), lag, latest_partition.isoformat() if latest_partition else None)
        )
    snap.freshness.sort(key=lambda f: f.asset)
    outcomes, _ = check_outcomes(instance, newest=True)
    latest = {o.key: o for o in outcomes}  # oldest first: the last one per check (and partition) wins
    snap.checks = list(latest.values())
    for run in instance.get_run_records(limit=RUN_WINDOW):
        r = run.dagster_run
        started = datetime.fromtimestamp(run.start_time, UTC) if run.start_time else None
        duration = run.end_time - run.start_time if run.start_time and run.end_time else None
        if r.status in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING) and run.start_time:
            duration = None
        snap.runs.append(RunSummary(r.job_name, r.status.value, duration, started))


STRATEGY_ASSETS = ("analytics/signals", "analytics/strategy_choices")


def _read_failed_strategies(key: AssetKey, last, snap: PlatformSnapshot) -> None:
    """The ``strategies_failed`` metadata of the latest materialization of the assets running strategies, merged
    (a name failing in either is reported)."""
    if key.to_user_string() not in STRATEGY_ASSETS or last.asset_materialization is None:
        return
    value = last.asset_materialization.metadata.get("strategies_failed")
    if value is None or not isinstance(value.value, dict):
        return
    snap.strategies_failed = {**(snap.strategies_failed or {}), **{str(k): str(v) for k, v in value.value.items()}}


def _latest_day(partitions: set[str]) -> date | None:
    days = []
    for p in partitions:
        try:
            days.append(date.fromisoformat(p))
        except ValueError:
            continue
    return max(days) if days else None


def wait_forever() -> None:  # pragma: no cover - interrupted by a signal
    while True:
        time.sleep(3600)

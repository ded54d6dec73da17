"""Schedules and sensors, driven by Dagster's test utilities against a real (ephemeral) instance and a real
database: what they request, that the same gap is never requested twice, and what the landing import does."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
    job,
    op,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.defs.automation.jobs import archive_import_job
from fks_pipelines.defs.automation.schedules import build_schedules
from fks_pipelines.defs.automation.sensors import (
    build_archive_landing_sensor,
    build_gap_sensor,
    build_new_symbol_sensor,
    build_run_failure_sensor,
)
from fks_pipelines.defs.shared import MarketDataResource, NotifierResource, PostgresResource
from fks_pipelines.lib.db.raw import replace_klines
from fks_pipelines.lib.klines import LoadScope
from fks_pipelines.lib.sources.sample import sample_klines
from tests.support import Reply, ScriptedServer

YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)


def load(url: str, symbols: tuple[str, ...], days: list) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for day in days:
            replace_klines(
                conn,
                sample_klines(symbols, day, day + timedelta(days=1)),
                LoadScope.for_day("spot", "1m", symbols, day.isoformat()),
                source="sample",
            )


def evaluate(sensor, url: str, symbols: list[str], cursor: str | None = None):
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={"database": PostgresResource(url=url), "market_data": MarketDataResource(symbols=symbols)},
    )
    return sensor(context)


def test_gap_sensor_requests_one_bounded_range_run_once_per_gap(db_url):
    gap_sensor = build_gap_sensor(window_days=5)
    days = [YESTERDAY - timedelta(days=i) for i in range(5)]
    load(db_url, ("BTCUSDT", "ETHUSDT"), [d for d in days if d != days[3]])  # days[3] missing for both...
    with psycopg.connect(db_url, autocommit=True) as conn:  # ...and BTC's yesterday incomplete
        conn.execute(
            "DELETE FROM raw.binance_klines"
            " WHERE symbol = 'BTCUSDT' AND open_time >= %s::date::timestamptz + interval '20 hours'",
            (days[0],),
        )
    request = evaluate(gap_sensor, db_url, ["BTCUSDT", "ETHUSDT"])
    assert isinstance(request, RunRequest)
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == days[3].isoformat()
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == days[0].isoformat()
    assert request.run_config["ops"]["raw__binance_klines"]["config"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert (
        evaluate(gap_sensor, db_url, ["BTCUSDT", "ETHUSDT"]).run_key == request.run_key
    )  # same gap, same key: never twice
    load(db_url, ("BTCUSDT", "ETHUSDT"), [days[3], days[0]])
    healed = evaluate(gap_sensor, db_url, ["BTCUSDT", "ETHUSDT"])
    assert isinstance(healed, SkipReason) and "no missing or incomplete day" in healed.skip_message


def test_new_symbols_get_their_history_and_are_not_gaps(db_url):
    gap_sensor, new_symbol_sensor = build_gap_sensor(window_days=3), build_new_symbol_sensor(history_days=60)
    load(db_url, ("BTCUSDT",), [YESTERDAY - timedelta(days=i) for i in range(3)])
    (request,) = evaluate(new_symbol_sensor, db_url, ["BTCUSDT", "SOLUSDT"])
    assert request.run_key == "new-symbol:spot:SOLUSDT:60"
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == (YESTERDAY - timedelta(days=59)).isoformat()
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == YESTERDAY.isoformat()
    assert request.run_config["ops"]["raw__binance_klines"]["config"]["symbols"] == ["SOLUSDT"]
    assert isinstance(
        evaluate(gap_sensor, db_url, ["BTCUSDT", "SOLUSDT"]), SkipReason
    )  # SOL is the new-symbol sensor's
    assert isinstance(evaluate(new_symbol_sensor, db_url, ["BTCUSDT"]), SkipReason)


def test_landed_archives_are_imported_or_quarantined(db_url, shared_data, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    archive_landing_sensor = build_archive_landing_sensor(landing)
    assert isinstance(archive_landing_sensor(build_sensor_context()), SkipReason)
    for name in ("BTCUSDT-1m-2020-01-01.zip", "BTCUSDT-1m-2020-01-01.zip.CHECKSUM"):
        shutil.copy(shared_data / "spot" / name, landing / name)
    (landing / "ETHUSDT-1m-2020-01-01.zip").write_bytes(b"not a zip at all")
    request = archive_landing_sensor(build_sensor_context())
    assert request.run_config["ops"]["import_landed_files"]["config"]["files"] == [
        "BTCUSDT-1m-2020-01-01.zip",
        "ETHUSDT-1m-2020-01-01.zip",
    ]
    result = archive_import_job.execute_in_process(
        run_config=request.run_config, resources={"database": PostgresResource(url=db_url)}
    )
    assert result.success
    assert sorted(p.name for p in (landing / "imported").iterdir()) == [
        "BTCUSDT-1m-2020-01-01.zip",
        "BTCUSDT-1m-2020-01-01.zip.CHECKSUM",
    ]
    reason = (landing / "quarantine" / "ETHUSDT-1m-2020-01-01.zip.reason.txt").read_text()
    assert "ETHUSDT-1m-2020-01-01.zip" in reason and "zip" in reason.lower()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.binance_klines WHERE symbol = 'BTCUSDT'").fetchone()[0] == 1440
        assert conn.execute("SELECT count(*) FROM raw.binance_klines WHERE symbol = 'ETHUSDT'").fetchone()[0] == 0
    assert isinstance(archive_landing_sensor(build_sensor_context()), SkipReason)  # moved aside: nothing left to retry


def test_failed_runs_are_posted_to_discord():
    @op
    def explode():
        raise RuntimeError("the exchange is on fire")

    @job
    def fragile():
        explode()

    instance = DagsterInstance.ephemeral()
    result = fragile.execute_in_process(instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    hook = ScriptedServer(lambda request: Reply(204))
    with hook:
        context = build_run_status_sensor_context(
            sensor_name="run_failure_to_discord",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=failure,
            resources={"notifier": NotifierResource(discord_webhook_url=hook.url)},
        ).for_run_failure()
        build_run_failure_sensor()(context)
    (posted,) = hook.requests
    assert "**fks run failed**: `fragile`" in posted.json()["content"] and result.run_id[:8] in posted.json()["content"]


def test_the_daily_schedule_runs_the_day_that_just_ended():
    daily_schedule, weekly_reoptimize_schedule = build_schedules("00:30")
    (request,) = daily_schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=datetime(2024, 5, 25, 0, 30, tzinfo=UTC))
    ).run_requests
    assert request.partition_key == "2024-05-24"
    assert (
        weekly_reoptimize_schedule.cron_schedule == "30 22 * * 6"
    )  # Saturday 22:30, two hours before Sunday 00:30 and weekly_reoptimize_schedule.job_name == "reoptimize_job"


@pytest.mark.parametrize("name", ["daily_job", "all_assets_job"])
def test_only_all_assets_job_reoptimizes(name):
    from fks_pipelines.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.executable_asset_keys}
    assert "recommendations/daily" in keys and ("analytics/strategy_choices" in keys) == (name == "all_assets_job")


def test_gap_sensor_does_not_refetch_a_gap_a_refetch_confirmed(db_url):
    """An exchange outage: the source answers the day short every time. One re-fetch, then it is a known gap,
    not requested again, also when the window moves (a new gap changes the run key: the known one stays out)."""
    gap_sensor = build_gap_sensor(window_days=3)
    days = [YESTERDAY - timedelta(days=i) for i in range(3)]
    load(db_url, ("BTCUSDT",), days[:2])

    def short_load(day):
        frame = sample_klines(("BTCUSDT",), day, day + timedelta(days=1))
        with psycopg.connect(db_url, autocommit=True) as conn:
            replace_klines(
                conn,
                frame.filter(frame["open_time"] < frame["open_time"].min() + timedelta(hours=20)),
                LoadScope.for_day("spot", "1m", ("BTCUSDT",), day.isoformat()),
                source="sample",
            )

    short_load(days[2])
    request = evaluate(gap_sensor, db_url, ["BTCUSDT"])
    assert isinstance(request, RunRequest)  # fetched once: worth one re-fetch
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == days[2].isoformat()
    short_load(days[2])  # the re-fetch: the same short day
    skipped = evaluate(gap_sensor, db_url, ["BTCUSDT"])
    assert isinstance(skipped, SkipReason) and "1 known gap(s)" in skipped.skip_message
    # A new gap elsewhere is requested alone, without the known one.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM raw.binance_klines WHERE open_time >= %s::date::timestamptz", (days[0],))
    request = evaluate(gap_sensor, db_url, ["BTCUSDT"])
    assert isinstance(request, RunRequest)
    assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        days[0].isoformat(),
        days[0].isoformat(),
    )

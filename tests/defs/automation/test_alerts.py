"""Freshness checks and check failures reach Discord: once per problem, short, with a link to the asset."""

from __future__ import annotations

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    build_sensor_context,
    define_asset_job,
)

from fks_pipelines.defs.automation.freshness import DAILY_ASSETS, build_freshness_checks, deadline_cron
from fks_pipelines.defs.automation.schedules import build_schedules
from fks_pipelines.defs.automation.sensors import build_check_failure_sensor, build_sensors
from fks_pipelines.defs.shared import NotifierResource, daily_partitions
from fks_pipelines.lib.notify import CheckOutcome, new_problems
from fks_pipelines.settings import Settings
from tests.support import Reply, ScriptedServer

RAW = AssetKey(["raw", "binance_klines"])
freshness_checks, freshness_checks_sensor = build_freshness_checks("00:30", 6)
check_failures_to_discord = build_check_failure_sensor()


def tick(instance: DagsterInstance, hook: ScriptedServer, cursor: str | None) -> str | None:
    notifier = NotifierResource(discord_webhook_url=hook.url)
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"notifier": notifier})
    check_failures_to_discord(context)
    return context.cursor


def test_every_daily_asset_and_the_unpartitioned_mart_has_a_freshness_check():
    checked = {key.asset_key for checks in freshness_checks for key in checks.check_keys}
    assert checked == {*DAILY_ASSETS, AssetKey(["marts", "dim_symbols"])}
    assert deadline_cron("00:30", 6) == "30 6 * * *" and deadline_cron("22:00", 3.5) == "30 1 * * *"


def test_the_freshness_sensor_runs_by_default_and_the_run_launching_ones_do_not():
    """Freshness checks show a result after `make demo` and `fks dev` without a switch in the UI; the sensors
    that launch pipeline runs start only with FKS_AUTOMATION=on."""
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    assert freshness_checks_sensor.default_status == DefaultSensorStatus.RUNNING
    for automation, expected in (("off", DefaultSensorStatus.STOPPED), ("on", DefaultSensorStatus.RUNNING)):
        sensors = {s.name: s for s in build_sensors(Settings.from_env({"FKS_AUTOMATION": automation}, recorded=False))}
        assert sensors["gap_sensor"].default_status == expected
        assert sensors["run_failure_to_discord"].default_status == expected
        (daily, _) = build_schedules("00:30", automation == "on")
        assert daily.default_status == DefaultScheduleStatus(expected.value)


def test_a_stale_asset_is_posted_once_with_a_link_to_it():
    (raw_check,) = [c for c in freshness_checks if RAW in {k.asset_key for k in c.check_keys}]

    @asset(key=RAW, partitions_def=daily_partitions)
    def binance_klines() -> None:  # the check's target, never materialized here
        return None

    # The real check, run as its sensor's RunRequest(asset_check_keys=...) runs it: a subset of the asset job.
    (raw_key,) = [k for k in raw_check.check_keys if k.asset_key == RAW]
    job = (
        Definitions(assets=[binance_klines], asset_checks=[raw_check])
        .resolve_implicit_global_asset_job_def()
        .get_subset(asset_selection=set(), asset_check_selection={raw_key})
    )
    instance = DagsterInstance.ephemeral()
    hook = ScriptedServer(lambda request: Reply(204))
    with hook:
        # Nothing was ever materialized: the real freshness check fails (the asset is stale).
        assert job.execute_in_process(instance=instance).success
        cursor = tick(instance, hook, None)
        assert job.execute_in_process(instance=instance).success  # evaluated again on the next sensor tick
        cursor = tick(instance, hook, cursor)
        tick(instance, hook, cursor)
    (posted,) = hook.requests  # one post for one problem, not one per evaluation or tick
    content = posted.json()["content"]
    assert content.startswith("**fks stale** (WARN) `raw/binance_klines`")
    assert "<http://127.0.0.1:3000/assets/raw/binance_klines?view=checks>" in content and len(content) < 400


def test_a_failing_check_is_posted_again_only_after_it_recovered():
    state = {"passed": False}

    @asset(key=["raw", "toy"])
    def toy() -> None:
        return None

    @asset_check(asset=toy, name="rows_sane")
    def rows_sane() -> AssetCheckResult:
        return AssetCheckResult(
            passed=state["passed"], severity=AssetCheckSeverity.ERROR, description="3 bars with high < low"
        )

    defs = Definitions(assets=[toy], asset_checks=[rows_sane], jobs=[define_asset_job("toy_job")])
    instance = DagsterInstance.ephemeral()
    hook = ScriptedServer(lambda request: Reply(204))
    cursor = None
    with hook:
        for passed in (False, False, True, False):
            state["passed"] = passed
            defs.resolve_job_def("toy_job").execute_in_process(instance=instance, raise_on_error=False)
            cursor = tick(instance, hook, cursor)
    contents = [r.json()["content"] for r in hook.requests]
    assert len(contents) == 2  # failed, (still failing: quiet), recovered, failed again
    assert all("**fks check failed** (ERROR) `raw/toy` · `rows_sane`: 3 bars with high < low" in c for c in contents)


def test_new_problems_is_per_check_and_partition():
    fail = CheckOutcome("raw/x", "c", False, "WARN", partition="2024-01-01")
    other_day = CheckOutcome("raw/x", "c", False, "WARN", partition="2024-01-02")
    fresh, announced = new_problems(set(), [fail, fail, other_day])
    assert fresh == [fail, other_day] and announced == {fail.key, other_day.key}
    fresh, announced = new_problems(announced, [CheckOutcome("raw/x", "c", True, "WARN", partition="2024-01-01")])
    assert fresh == [] and announced == {other_day.key}

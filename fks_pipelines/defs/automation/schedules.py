"""The daily run (the previous UTC day's partition, at FKS_SCHEDULE_TIME) and the weekly re-optimization."""

from dagster import DefaultScheduleStatus, ScheduleDefinition, build_schedule_from_partitioned_job
from dagster._core.definitions.partitions.partitioned_schedule import UnresolvedPartitionedAssetScheduleDefinition

from fks_pipelines.defs.automation.jobs import daily_job, reoptimize_job


def build_schedules(
    schedule_time: str, automation: bool = False
) -> list[ScheduleDefinition | UnresolvedPartitionedAssetScheduleDefinition]:
    """The daily schedule at ``schedule_time`` (HH:MM, UTC) and the weekly re-optimization before it; running by
    default in production (FKS_AUTOMATION=on), stopped in dev and the demo (started from the UI)."""
    hour, minute = (int(x) for x in schedule_time.split(":"))
    status = DefaultScheduleStatus.RUNNING if automation else DefaultScheduleStatus.STOPPED
    # A daily-partitioned job's schedule targets the partition that just ended: at 00:30 UTC on the 25th it runs
    # the 24th, raw -> dbt -> signals -> documents/embeddings -> recommendation -> Discord.
    daily = build_schedule_from_partitioned_job(
        daily_job, name="daily_schedule", hour_of_day=hour, minute_of_hour=minute, default_status=status
    )
    # Re-optimizing every strategy is the expensive step: weekly, two hours before Sunday's daily run (so that
    # run trades the new choice), not daily.
    before = (hour * 60 + minute - 120) % (24 * 60)
    weekday = 0 if hour * 60 + minute >= 120 else 6  # Sunday, or Saturday evening when the daily run is early
    weekly = ScheduleDefinition(
        name="weekly_reoptimize_schedule",
        job=reoptimize_job,
        cron_schedule=f"{before % 60} {before // 60} * * {weekday}",
        execution_timezone="UTC",
        default_status=status,
    )
    return [daily, weekly]

"""The daily run (the previous UTC day's partition, at FKS_SCHEDULE_TIME) and the weekly re-optimization."""

from dagster import DefaultScheduleStatus, ScheduleDefinition, build_schedule_from_partitioned_job

from fks_pipelines.defs.automation.jobs import daily_job, reoptimize_job
from fks_pipelines.settings import settings

_settings = settings()
_hour, _minute = (int(x) for x in _settings.schedule_time.split(":"))
# Running by default in production (FKS_AUTOMATION=on); stopped in dev and the demo, started from the UI.
DEFAULT_STATUS = DefaultScheduleStatus.RUNNING if _settings.automation else DefaultScheduleStatus.STOPPED

# A daily-partitioned job's schedule targets the partition that just ended: at 00:30 UTC on the 25th it runs
# the 24th, raw -> dbt -> signals -> documents/embeddings -> recommendation -> Discord.
daily_schedule = build_schedule_from_partitioned_job(
    daily_job, name="daily_schedule", hour_of_day=_hour, minute_of_hour=_minute, default_status=DEFAULT_STATUS
)

# Re-optimizing every strategy is the expensive step: weekly, two hours before Sunday's daily run (so that
# run trades the new choice), not daily.
_before = (_hour * 60 + _minute - 120) % (24 * 60)
_weekday = 0 if _hour * 60 + _minute >= 120 else 6  # Sunday, or Saturday evening when the daily run is early
weekly_reoptimize_schedule = ScheduleDefinition(
    name="weekly_reoptimize_schedule",
    job=reoptimize_job,
    cron_schedule=f"{_before % 60} {_before // 60} * * {_weekday}",
    execution_timezone="UTC",
    default_status=DEFAULT_STATUS,
)

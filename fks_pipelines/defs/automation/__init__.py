"""How the platform runs unattended: the jobs, the daily and weekly schedules, and the sensors."""

from dagster import Definitions

from fks_pipelines.defs.automation.jobs import all_assets_job, archive_import_job, daily_job, reoptimize_job
from fks_pipelines.defs.automation.schedules import daily_schedule, weekly_reoptimize_schedule
from fks_pipelines.defs.automation.sensors import (
    archive_landing_sensor,
    gap_sensor,
    new_symbol_sensor,
    run_failure_to_discord,
)

defs = Definitions(
    jobs=[all_assets_job, daily_job, reoptimize_job, archive_import_job],
    schedules=[daily_schedule, weekly_reoptimize_schedule],
    sensors=[gap_sensor, new_symbol_sensor, archive_landing_sensor, run_failure_to_discord],
)

"""How the platform runs unattended: the jobs, the daily and weekly schedules, and the sensors."""

from dagster import Definitions

from fks_pipelines.defs.automation.jobs import archive_import_job, daily_job, main_job, reoptimise_job
from fks_pipelines.defs.automation.schedules import daily_schedule, weekly_reoptimisation
from fks_pipelines.defs.automation.sensors import (
    archive_landing_sensor,
    gap_sensor,
    new_symbol_sensor,
    run_failure_to_discord,
)

defs = Definitions(
    jobs=[main_job, daily_job, reoptimise_job, archive_import_job],
    schedules=[daily_schedule, weekly_reoptimisation],
    sensors=[gap_sensor, new_symbol_sensor, archive_landing_sensor, run_failure_to_discord],
)

"""How the platform runs unattended: the jobs, the daily and weekly schedules, the sensors and the freshness
checks they evaluate."""

from dagster import Definitions

from fks_pipelines.defs.automation.freshness import freshness_checks, freshness_checks_sensor
from fks_pipelines.defs.automation.jobs import all_assets_job, archive_import_job, daily_job, reoptimize_job
from fks_pipelines.defs.automation.schedules import daily_schedule, weekly_reoptimize_schedule
from fks_pipelines.defs.automation.sensors import (
    archive_landing_sensor,
    check_failures_to_discord,
    gap_sensor,
    new_symbol_sensor,
    run_failure_to_discord,
)

defs = Definitions(
    jobs=[all_assets_job, daily_job, reoptimize_job, archive_import_job],
    schedules=[daily_schedule, weekly_reoptimize_schedule],
    sensors=[
        gap_sensor,
        new_symbol_sensor,
        archive_landing_sensor,
        run_failure_to_discord,
        check_failures_to_discord,
        freshness_checks_sensor,
    ],
    asset_checks=freshness_checks,
)

"""How the platform runs unattended: the jobs, the daily and weekly schedules, the sensors and the freshness
checks they evaluate. Their shape depends on the settings (the daily run's time, the freshness deadline, whether
automation runs by default, the sensors' windows and folder), so this layer is built by ``build_defs(settings)``
from the one settings model ``definitions.py`` reads."""

from dagster import Definitions

from fks_pipelines.defs.automation.freshness import build_freshness_checks
from fks_pipelines.defs.automation.jobs import all_assets_job, archive_import_job, daily_job, reoptimize_job
from fks_pipelines.defs.automation.schedules import build_schedules
from fks_pipelines.defs.automation.sensors import build_sensors
from fks_pipelines.settings import Settings


def build_defs(settings: Settings) -> Definitions:
    freshness_checks, freshness_sensor = build_freshness_checks(
        settings.schedule_time, settings.freshness_deadline_hours
    )
    return Definitions(
        jobs=[all_assets_job, daily_job, reoptimize_job, archive_import_job],
        schedules=build_schedules(settings.schedule_time, settings.automation),
        sensors=[*build_sensors(settings), freshness_sensor],
        asset_checks=freshness_checks,
    )

"""Freshness: is each day's data there by its deadline?

Dagster 1.13's partition freshness checks (``build_time_partition_freshness_checks``) sit on every daily
partitioned asset: the raw bars, the dbt daily marts, the signals, the documents and the recommendation. A day's
partition must be materialized within ``FKS_FRESHNESS_DEADLINE_HOURS`` after the daily schedule's time (the
deadline is a cron in UTC). The unpartitioned dbt mart ``dim_symbols`` gets a last-update check (refreshed
within 26 hours). A sensor (``freshness_checks_sensor``) evaluates them on its interval, so they show in the UI's
checks tab even on days no run happened, and a failing one is alerted by ``check_failures_to_discord``.

Dagster 1.13 marks these builders superseded by ``FreshnessPolicy`` (evaluated by the daemon, shown as a
freshness state rather than a check). They are kept deliberately: a freshness check is an asset check like the
data-quality ones, so one alert path (check evaluations -> Discord), one metric (check results by severity) and
the UI's checks tab cover both; the superseded-warning is silenced here only.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

from dagster import (
    AssetChecksDefinition,
    AssetCheckSeverity,
    DefaultSensorStatus,
    SensorDefinition,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
)

from fks_pipelines.defs.shared import DAILY_ASSETS, UNPARTITIONED_MARTS


def deadline_cron(schedule_time: str, deadline_hours: float) -> str:
    """Cron (UTC) of the freshness deadline: the daily run's time plus the allowed delay, each day."""
    hour, minute = (int(x) for x in schedule_time.split(":"))
    at = (hour * 60 + minute + round(deadline_hours * 60)) % (24 * 60)
    return f"{at % 60} {at // 60} * * *"


def build_freshness_checks(
    schedule_time: str, deadline_hours: float
) -> tuple[list[AssetChecksDefinition], SensorDefinition]:
    """The freshness checks (a day is due ``deadline_hours`` after the daily run's ``schedule_time``) and the sensor
    that evaluates them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is superseded.*")
        checks = [
            *build_time_partition_freshness_checks(
                assets=list(DAILY_ASSETS),
                deadline_cron=deadline_cron(schedule_time, deadline_hours),
                timezone="UTC",
                severity=AssetCheckSeverity.WARN,
            ),
            *build_last_update_freshness_checks(
                assets=list(UNPARTITIONED_MARTS),
                lower_bound_delta=timedelta(hours=26),
                severity=AssetCheckSeverity.WARN,
            ),
        ]
        sensor = build_sensor_for_freshness_checks(
            freshness_checks=checks,
            minimum_interval_seconds=600,
            name="freshness_checks_sensor",
            # Running by default, unlike the sensors that launch pipeline runs: it only evaluates checks, so after
            # `make demo` and `fks dev` the checks show a result instead of "Not evaluated".
            default_status=DefaultSensorStatus.RUNNING,
        )
    return checks, sensor

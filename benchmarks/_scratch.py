"""A scratch database on the benchmark's own embedded server (``_home``: a temporary FKS_HOME on a free port)."""

from __future__ import annotations

import _home  # noqa: F401 - the benchmark's own FKS_HOME and port (normally imported first by the script)
import psycopg

from fks_pipelines.lib.db.connect import connect, migrate, with_database
from fks_pipelines.lib.db.platform import database_urls
from fks_pipelines.settings import Settings


def server_url() -> str:
    data_url, _ = database_urls(Settings.from_env())
    return data_url


def create_scratch_database(name: str, url: str | None = None) -> str:
    """Drop and re-create ``name``, apply the platform's migrations, return its URL."""
    url = url or server_url()
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    scratch = with_database(url, name)
    with connect(scratch) as conn:
        migrate(conn, Settings.from_env().timescale())
    return scratch


def drop_scratch_database(url: str) -> None:
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}" WITH (FORCE)')


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds per step (op) of a run, from its stored STEP_START and STEP_SUCCESS/FAILURE events."""
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            took[event.step_key] = round(entry.timestamp - started[event.step_key], 2)
    return took

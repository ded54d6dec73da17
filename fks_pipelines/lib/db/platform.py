"""Where the platform's data lives, resolved from the settings: the embedded server of ``$FKS_HOME`` (started on
demand) or the external server of ``FKS_DATABASE_URL``, and the environment Dagster processes need to reach it.
Used by the CLI, the demo and the benchmarks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fks_pipelines.lib.db.connect import dbt_profile_env, with_database
from fks_pipelines.lib.db.embedded import EmbeddedPostgres
from fks_pipelines.settings import PROJECT_ROOT, Settings


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(
        settings.home, port=settings.pg_port, os_user=settings.pg_os_user, bin_path=settings.pg_bin_dir
    )


def database_urls(settings: Settings, *, start: bool = True) -> tuple[str, str]:
    """(data URL, Dagster storage URL). Starts the embedded server unless an external one is configured."""
    if settings.database_url:
        dagster_url = settings.dagster_database_url or with_database(
            settings.database_url, "dagster", driver="psycopg2"
        )
        return settings.database_url, dagster_url
    server = embedded_server(settings)
    if start:
        server.start()
    # dagster-postgres on SQLAlchemy 2.1 needs the psycopg2 driver named explicitly.
    return server.url("fks"), settings.dagster_database_url or server.url("dagster", driver="psycopg2")


def recorded_env(settings: Settings) -> dict[str, str]:
    """The recorded (or exported) partition start and demo data (source, interval, universe), as the variables the
    Dagster processes read: their ``settings()`` reads the environment only."""
    fields = {"FKS_PARTITIONS_START": "partitions_start", "FKS_SOURCE": "source", "FKS_INTERVAL": "interval"}
    fields["FKS_SYMBOLS"] = "symbols"
    out = {}
    for variable, field in fields.items():
        if field in settings.model_fields_set:
            value = getattr(settings, field)
            out[variable] = ",".join(value) if isinstance(value, tuple) else str(value)
    return out


def platform_env(settings: Settings, *, start: bool = True) -> dict[str, str]:
    """The environment Dagster processes need: database URLs, a DAGSTER_HOME holding our dagster.yaml, and what the
    home recorded (``recorded_env``: the definitions' ``settings()`` reads the environment only)."""
    data_url, dagster_url = database_urls(settings, start=start)
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    source_yaml = PROJECT_ROOT / "dagster.yaml"
    target_yaml = dagster_home / "dagster.yaml"
    if source_yaml.exists() and (not target_yaml.exists() or target_yaml.read_text() != source_yaml.read_text()):
        shutil.copyfile(source_yaml, target_yaml)
    return {
        "FKS_DATABASE_URL": data_url,
        "FKS_DAGSTER_DATABASE_URL": dagster_url,
        "DAGSTER_HOME": str(dagster_home),
        "FKS_HOME": str(settings.home),
        **recorded_env(settings),
        # For dbt run by hand in dbt_project/ (Dagster's dbt assets derive these from the database resource).
        **dbt_profile_env(data_url),
    }

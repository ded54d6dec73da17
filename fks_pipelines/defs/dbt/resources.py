"""The dbt project and the dbt CLI resource, and the connection dbt uses."""

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject

from fks_pipelines.lib.db.connect import dbt_profile_env
from fks_pipelines.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# The dbt installed beside this Python (the venv's), whether or not the venv is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


@cache
def dbt_project() -> DbtProject:
    """The dbt project with an up-to-date manifest, prepared on first use and cached for the process (importing
    this module runs nothing; loading the code location parses at most once, and only when the manifest is
    missing or older than the project's files)."""
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    ensure_manifest(project)
    return project


def _manifest_is_stale(project: DbtProject) -> bool:
    manifest = Path(project.manifest_path)
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [*DBT_PROJECT_DIR.glob("**/*.sql"), *DBT_PROJECT_DIR.glob("**/*.yml")]
    return any(p.stat().st_mtime > built for p in sources if "target" not in p.parts)


def ensure_manifest(project: DbtProject) -> Path:
    """Build target/manifest.json with `dbt parse` when it is missing or older than the project's files,
    so a fresh checkout, `dagster dev` and the tests need no manual step (parse never connects)."""
    if _manifest_is_stale(project):
        subprocess.run(
            [
                DBT_EXECUTABLE,
                "parse",
                "--quiet",
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(Path(project.manifest_path).parent),
            ],
            check=True,
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        )
    return Path(project.manifest_path)


@contextmanager
def dbt_connection(url: str) -> Iterator[None]:
    """dbt reads its connection from FKS_DBT_* (profiles.yml); point them at ``url`` for the duration of
    one dbt invocation, so dbt always writes where the platform's database resource points."""
    values = dbt_profile_env(url)
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def manifest_for_database(manifest: Mapping[str, Any], dbname: str) -> dict[str, Any]:
    """The manifest with every model's, test's and source's relation in database ``dbname``.

    The code location's manifest comes from `dbt parse`, which never connects and so names relations in the
    profile's default database (``"fks"."marts"."fct_ohlcv_1h"``). dagster-dbt's fetch_row_counts() and
    fetch_column_metadata() query those names as they stand, and PostgreSQL refuses a name in another database
    ("cross-database references are not implemented"), so on any database not named fks the marts lost their
    row counts and column schemas. A run's database is only known at run time (the database resource's URL), so
    the invocation's manifest is pointed at it there; the rest of the manifest is shared, not copied."""
    moved = dict(manifest)
    for section in ("nodes", "sources"):
        entries = dict(manifest.get(section, {}))
        for unique_id, props in entries.items():
            database = props.get("database")
            if not database or database == dbname:
                continue
            relation = props.get("relation_name")
            prefix = f'"{database}".'
            if relation and relation.startswith(prefix):
                relation = f'"{dbname}".' + relation[len(prefix) :]
            entries[unique_id] = {**props, "database": dbname, "relation_name": relation}
        moved[section] = entries
    return moved


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project(), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=DBT_EXECUTABLE)

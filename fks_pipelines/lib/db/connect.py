"""Connections to the platform's database and its schema migrations.

One URL says where the data lives: the embedded server's (the default) or ``FKS_DATABASE_URL``'s. Migrations
are plain SQL files applied in order, each once, under an advisory lock so concurrent processes (Dagster's
run workers, the CLI) never race on DDL. Every such lock is waited for at most FKS_LOCK_TIMEOUT seconds.
"""

from __future__ import annotations

from importlib import resources
from typing import TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg

from fks_pipelines.lib.db.timescale import TimescaleOptions, enable_timescaledb
from fks_pipelines.lib.errors import DatabaseError
from fks_pipelines.settings import lock_timeout_s

_MIGRATION_LOCK = 0x666B73  # "fks": a fixed advisory-lock key for DDL

Row = TypeVar("Row")


def connect(url: str, *, autocommit: bool = True, application_name: str = "fks_pipelines") -> psycopg.Connection:
    """Autocommit by default: every write happens inside an explicit ``conn.transaction()`` block, and a read
    never leaves an implicit transaction open (which would turn later blocks into savepoints of it)."""
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name=application_name, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {redact(url)}: {str(exc).strip()}") from None


def one_row(cursor: psycopg.Cursor[Row]) -> Row:
    """The row of a query that always returns one (an aggregate, a function call, ``INSERT ... RETURNING``);
    a DatabaseError if it returned none."""
    row = cursor.fetchone()
    if row is None:
        raise DatabaseError("a query that always returns a row returned none")
    return row


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str, *, driver: str | None = None) -> str:
    """The same server and credentials, another database (and optionally a SQLAlchemy driver suffix)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if driver:
        scheme = f"{scheme}+{driver}"
    return urlunsplit(parts._replace(scheme=scheme, path=f"/{database}"))


def advisory_xact_lock(conn: psycopg.Connection, *keys: int | str, what: str, timeout_s: float | None = None) -> None:
    """Take a transaction-level advisory lock on one bigint key or two int keys (a str key is ``hashtext``-ed),
    waiting at most ``timeout_s`` (default FKS_LOCK_TIMEOUT); that ``lock_timeout`` also bounds the rest of the
    transaction's lock waits. Call inside ``conn.transaction()``. On timeout, raise a DatabaseError naming the
    sessions that hold the lock."""
    ints = [one_row(conn.execute("SELECT hashtext(%s)", (k,)))[0] if isinstance(k, str) else k for k in keys]
    timeout = lock_timeout_s() if timeout_s is None else timeout_s
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{max(1, round(timeout * 1000))}ms",))
    call = "pg_advisory_xact_lock(%s::bigint)" if len(ints) == 1 else "pg_advisory_xact_lock(%s::int, %s::int)"
    try:
        with conn.transaction():  # a savepoint: after a timeout this transaction can still ask who holds the lock
            conn.execute(f"SELECT {call}", ints)
    except psycopg.errors.LockNotAvailable:
        holders = [
            f"pid {pid} (user {user}, application {app!r})"
            for pid, user, app in conn.execute(_LOCK_HOLDERS, _lock_tag(ints)).fetchall()
        ]
        raise DatabaseError(
            f"gave up after {timeout:g}s waiting for the {what} lock "
            f"(advisory lock {', '.join(map(str, ints))}), held by "
            f"{', '.join(holders) or 'a session that has since let it go'}; end that session or raise FKS_LOCK_TIMEOUT"
        ) from None


_LOCK_HOLDERS = """
    SELECT l.pid, a.usename, a.application_name
    FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = %s::oid AND l.objid = %s::oid AND l.objsubid = %s
    ORDER BY l.pid
"""


def _lock_tag(keys: list[int]) -> tuple[int, int, int]:
    """(classid, objid, objsubid) of an advisory lock in pg_locks: a bigint key's two halves, or the two int keys."""
    if len(keys) == 1:
        return (keys[0] >> 32) & 0xFFFFFFFF, keys[0] & 0xFFFFFFFF, 1
    return keys[0] & 0xFFFFFFFF, keys[1] & 0xFFFFFFFF, 2


def migrations() -> list[tuple[str, str]]:
    """(version, sql) for every migration file, in order."""
    folder = resources.files("fks_pipelines.lib.db.migrations")
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def migrate(conn: psycopg.Connection, timescale: TimescaleOptions | None = None) -> list[str]:
    """Apply pending migrations, then use TimescaleDB if the server offers it (and ``timescale`` allows);
    return the versions applied now. Safe to call from many processes."""
    applied_now: list[str] = []
    with conn.transaction():
        advisory_xact_lock(conn, _MIGRATION_LOCK, what="migration")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.fks_schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM public.fks_schema_migrations")}
        for version, sql in migrations():
            if version in done:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO public.fks_schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
        enable_timescaledb(conn, timescale or TimescaleOptions())
    return applied_now


def dbt_profile_env(url: str) -> dict[str, str]:
    """The FKS_DBT_* variables dbt_project/profiles.yml reads, from a libpq URL (one source of truth)."""
    parts = urlsplit(url)
    return {
        "FKS_DBT_HOST": parts.hostname or "127.0.0.1",
        "FKS_DBT_PORT": str(parts.port or 5432),
        "FKS_DBT_USER": unquote(parts.username or ""),
        "FKS_DBT_PASSWORD": unquote(parts.password or ""),
        "FKS_DBT_DBNAME": parts.path.lstrip("/") or "postgres",
    }

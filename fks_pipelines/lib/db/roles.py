"""Logins for people: the read-only ``analyst`` role (created by migration 003) gets a password and LOGIN.

What the analyst may read is ``ANALYST_GRANTS``, exactly (migrations 003-007 grant it; a test compares the
database's privileges with it). It can write nothing anywhere: no temporary tables, no large objects, no
advisory locks (``PLATFORM_ONLY_FUNCTIONS``, revoked from PUBLIC by migration 007), no other database.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from fks_pipelines.lib.errors import DatabaseError

ANALYST = "analyst"


@dataclass(frozen=True)
class TableGrant:
    """SELECT on ``schema.table`` (``*``: every table and view in the schema), on ``columns`` only if given."""

    schema: str
    table: str
    columns: tuple[str, ...] | None = None


# Everything the analyst role may read; nothing else, and no other privilege than SELECT. Not the portfolio
# schema (account names, cash, trades) nor the prompts and raw LLM answers (they quote an account's cash).
ANALYST_GRANTS: tuple[TableGrant, ...] = (
    TableGrant("marts", "*"),  # whatever dbt builds there
    *(
        TableGrant("analytics", t)
        for t in (
            "signals",
            "backtest_runs",
            "backtest_results",
            "strategy_choices",
            "market_regimes",
            "regime_transitions",
            "strategy_state",
        )
    ),
    TableGrant("knowledge", "documents"),
    TableGrant("knowledge", "chunks"),
    TableGrant("recommendations", "daily"),
    TableGrant("recommendations", "track_record"),
    TableGrant("recommendations", "evaluation"),
    TableGrant("recommendations", "shadow_daily"),  # not shadow_fills: a ledger, like portfolio.trades
    TableGrant("recommendations", "guards"),  # the protections' acts: shares of equity, never an amount of cash
    TableGrant(
        "recommendations",
        "generations",
        (
            "decision_date",
            "account",
            "generator",
            "model",
            "decided_at",
            "latency_ms",
            "prompt_tokens",
            "completion_tokens",
            "attempts",
            "retrieved_ids",
            "created_at",
        ),
    ),
)

# Functions migration 007 revokes from PUBLIC (the platform's role keeps them): advisory locks, which would let
# anyone stall the loaders and migrations, and the large-object functions that write.
PLATFORM_ONLY_FUNCTIONS: tuple[str, ...] = (
    *(
        f"pg_{try_}advisory_{xact}lock{shared}({args})"
        for try_ in ("", "try_")
        for xact in ("", "xact_")
        for shared in ("", "_shared")
        for args in ("bigint", "integer,integer")
    ),
    "lo_creat(integer)",
    "lo_create(oid)",
    "lo_from_bytea(oid,bytea)",
    "lo_import(text)",
    "lo_import(text,oid)",
    "lo_put(oid,bigint,bytea)",
    "lowrite(integer,bytea)",
    "lo_truncate(integer,integer)",
    "lo_truncate64(integer,bigint)",
    "lo_unlink(oid)",
)


@dataclass(frozen=True)
class AnalystLimits:
    """Per-role defaults applied with LOGIN (FKS_ANALYST_STATEMENT_TIMEOUT, _CONNECTION_LIMIT, _WORK_MEM)."""

    statement_timeout_s: float = 300.0  # also the idle-in-transaction timeout: an open transaction blocks dbt
    connection_limit: int = 10
    work_mem: str = "64MB"


def enable_analyst_login(conn: psycopg.Connection, password: str, limits: AnalystLimits | None = None) -> None:
    """Give the analyst role LOGIN with ``password`` and ``limits`` (idempotent; password and limits replaced)."""
    limits = limits or AnalystLimits()
    role = sql.Identifier(ANALYST)
    timeout = sql.Literal(f"{round(limits.statement_timeout_s * 1000)}ms")
    with conn.transaction():
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {} CONNECTION LIMIT {}").format(
                role, sql.Literal(password), sql.Literal(limits.connection_limit)
            )
        )
        conn.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(role, timeout))
        conn.execute(sql.SQL("ALTER ROLE {} SET idle_in_transaction_session_timeout = {}").format(role, timeout))
        conn.execute(sql.SQL("ALTER ROLE {} SET work_mem = {}").format(role, sql.Literal(limits.work_mem)))


def analyst_gaps(conn: psycopg.Connection) -> list[str]:
    """What the analyst can still do beyond reading this database: other databases it may connect to, temporary
    objects here, platform-only functions it may execute (e.g. on an external server where the platform's role
    could not revoke them). Empty when it is locked down."""
    gaps = [
        f"can connect to database {name!r}"
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND datname <> current_database()"
            " AND has_database_privilege(%s, datname, 'CONNECT') ORDER BY datname",
            (ANALYST,),
        )
    ]
    temporary = conn.execute(
        "SELECT has_database_privilege(%s, current_database(), 'TEMPORARY')", (ANALYST,)
    ).fetchone()
    if temporary is None:  # a function call always returns a row
        raise DatabaseError("has_database_privilege returned no row")
    if temporary[0]:
        gaps.append("can create temporary tables and functions in this database")
    executable = conn.execute(
        "SELECT f FROM unnest(%s::text[]) f WHERE has_function_privilege(%s, 'pg_catalog.' || f, 'EXECUTE')",
        (list(PLATFORM_ONLY_FUNCTIONS), ANALYST),
    )
    return gaps + [f"can execute {signature}" for (signature,) in executable]


def url_for_role(url: str, role: str, password: str) -> str:
    """``url`` with another role and password (same server and database)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def stored_password(path: Path) -> str:
    """A password generated once into ``path`` (mode 0600, its folder 0700) and read back afterwards."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    return path.read_text().strip()

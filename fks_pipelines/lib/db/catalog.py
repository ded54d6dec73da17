"""What PostgreSQL's catalog says about a table (its columns, type and comment, and its row count) and about the
server (its version and the extensions it offers, for `fks db status`).

Read for the Dagster catalog (dagster/column_schema, dagster/row_count) from the live table, so what the UI
shows is what the database holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from fks_pipelines.lib.db.connect import one_row


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    description: str | None


def table_columns(conn: psycopg.Connection, table: str) -> list[Column]:
    """The columns of ``schema.table`` in order, with their types and COMMENTs; empty when it does not exist."""
    schema, name = table.split(".", 1)
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, col_description(c.oid, a.attnum)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, name),
    ).fetchall()
    return [Column(*row) for row in rows]


def table_row_count(conn: psycopg.Connection, table: str) -> int:
    """The exact number of rows of ``schema.table``."""
    schema, name = table.split(".", 1)
    query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
    return conn.execute(query).fetchone()[0]  # type: ignore[index]


def server_version(conn: psycopg.Connection) -> str:
    """The server's PostgreSQL version (``SHOW server_version``), e.g. ``17.2``."""
    return str(one_row(conn.execute("SHOW server_version"))[0])


def available_extensions(conn: psycopg.Connection) -> list[str]:
    """The extensions the server could create (installed or not), by name."""
    return [r[0] for r in conn.execute("SELECT name FROM pg_available_extensions ORDER BY 1")]

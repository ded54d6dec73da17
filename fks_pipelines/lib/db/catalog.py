"""What PostgreSQL's catalog says about a table: its columns (type, comment) and its row count.

Read for the Dagster catalog (dagster/column_schema, dagster/row_count) from the live table, so what the UI
shows is what the database holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql


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

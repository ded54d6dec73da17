"""Cluster-wide mutual exclusion through PostgreSQL advisory locks: what must never run twice at once on one
database, whichever worker, container or pod runs it. Held by a session of its own and released when that
session ends, so a killed run cannot leave one behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from fks_pipelines.lib.db.connect import connect

# dbt builds: two runs over overlapping date windows (a first boot's per-symbol backfills, a gap heal beside the
# daily schedule) would otherwise delete+insert the same incremental partitions at the same time.
DBT_BUILD = "fks_pipelines: dbt build"


# Assets that rewrite shared tables (recommendations, the paper ledger, evaluation, track record, profit splits):
# two runs over overlapping days would delete and insert the same rows at once (a UniqueViolation, or a ledger
# replayed twice). One lock per asset key; defs/shared.py's ``one_run_at_a_time`` takes it.
def asset_lock(asset: str) -> str:
    return f"fks_pipelines: asset {asset}"


@contextmanager
def advisory_lock(
    url: str, name: str, holder: str | None = None, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Wait for, then hold, the database-wide lock ``name`` for the duration of the block. ``holder`` names this
    session to others (its application_name); when the lock is taken, ``on_wait`` is called first with the name
    of the session holding it."""
    conn = connect(url, application_name=f"fks {holder or 'lock: ' + name}"[:63])
    try:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)).fetchone()
        if not (row and row[0]):
            if on_wait is not None:
                on_wait(lock_holder(conn, name) or "another session")
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (name,))
        yield
    finally:
        conn.close()  # ending the session releases the lock


def lock_holder(conn: psycopg.Connection, name: str) -> str | None:
    """The application_name of the session holding ``name`` (None when none does)."""
    row = conn.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid),"
        " (SELECT hashtextextended(%s, 0) AS h) k"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.classid = ((k.h >> 32) & 4294967295)::oid AND l.objid = (k.h & 4294967295)::oid",
        (name,),
    ).fetchone()
    return row[0] if row else None


def lock_is_held(url: str, name: str) -> bool:
    """Whether another session holds ``name`` now (tries it without waiting, and lets go at once)."""
    with connect(url) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)).fetchone()
        got = bool(row and row[0])
        if got:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (name,))
        return not got

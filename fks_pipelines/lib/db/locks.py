"""Cluster-wide mutual exclusion through PostgreSQL advisory locks: what must never run twice at once on one
database, whichever worker, container or pod runs it. Held by a session of its own and released when that
session ends, so a killed run cannot leave one behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fks_pipelines.lib.db.connect import connect

# dbt builds: two runs over overlapping date windows (a first boot's per-symbol backfills, a gap heal beside the
# daily schedule) would otherwise delete+insert the same incremental partitions at the same time.
DBT_BUILD = "fks_pipelines: dbt build"


@contextmanager
def advisory_lock(url: str, name: str) -> Iterator[None]:
    """Wait for, then hold, the database-wide lock ``name`` for the duration of the block."""
    conn = connect(url, application_name=f"fks_pipelines lock: {name}"[:63])
    try:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (name,))
        yield
    finally:
        conn.close()  # ending the session releases the lock


def lock_is_held(url: str, name: str) -> bool:
    """Whether another session holds ``name`` now (tries it without waiting, and lets go at once)."""
    with connect(url) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)).fetchone()
        got = bool(row and row[0])
        if got:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (name,))
        return not got

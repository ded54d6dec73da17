"""A lock held elsewhere (a stuck run, a stray session) makes loaders and migrations fail in time, naming it."""

from __future__ import annotations

import time
from datetime import date

import psycopg
import pytest

from fks_pipelines.lib.db.connect import _MIGRATION_LOCK, connect, migrate
from fks_pipelines.lib.db.raw import replace_klines
from fks_pipelines.lib.errors import DatabaseError
from fks_pipelines.lib.klines import LoadScope
from fks_pipelines.lib.sources.sample import sample_klines


@pytest.fixture
def holder(db_url):
    """Another platform session, named for the message, that will hold a lock."""
    with psycopg.connect(db_url, autocommit=True, application_name="stuck-run") as conn:
        yield conn


def _waiting(db_url: str):
    """The session that waits; a statement timeout stops it from hanging the suite if nothing else does."""
    conn = connect(db_url)
    conn.execute("SET statement_timeout = '15s'")
    return conn


def test_a_load_blocked_by_a_held_lock_fails_in_time_naming_the_holder(db_url, holder, monkeypatch):
    monkeypatch.setenv("FKS_LOCK_TIMEOUT", "0.5")
    holder.execute("SELECT pg_advisory_lock(hashtext('raw.binance_klines'), hashtext('spot/1m'))")
    pid = holder.info.backend_pid
    day = date(2024, 1, 1)
    frame = sample_klines(("BTCUSDT",), day, date(2024, 1, 2))
    with _waiting(db_url) as conn:
        started = time.monotonic()
        with pytest.raises(DatabaseError) as failed:
            replace_klines(conn, frame, LoadScope.for_day("spot", "1m", ("BTCUSDT",), day.isoformat()), source="sample")
        assert time.monotonic() - started < 5
        assert f"held by pid {pid} (user fks, application 'stuck-run')" in str(failed.value)
        assert "spot/1m load" in str(failed.value) and "0.5s" in str(failed.value)
        assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone() == (0,)
        assert conn.execute("SELECT status FROM raw.ingest_log").fetchall() == [("failed",)]


def test_migrations_blocked_by_a_held_lock_fail_in_time_naming_the_holder(db_url, holder, monkeypatch):
    monkeypatch.setenv("FKS_LOCK_TIMEOUT", "0.5")
    holder.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    with _waiting(db_url) as conn:
        started = time.monotonic()
        with pytest.raises(DatabaseError, match=f"migration lock .*held by pid {holder.info.backend_pid} "):
            migrate(conn)
        assert time.monotonic() - started < 5
    holder.execute("SELECT pg_advisory_unlock_all()")
    with connect(db_url) as conn:
        assert migrate(conn) == []  # the lock free again, migrations go on as before

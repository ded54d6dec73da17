"""The embedded PostgreSQL server the project starts and owns."""

from __future__ import annotations

import os
import stat

import psycopg
import pytest

from fks_pipelines.lib.db.embedded import EmbeddedPostgres, free_port
from fks_pipelines.lib.errors import DatabaseError


def test_start_is_idempotent_and_status_tells_where(pg_server):
    before = pg_server.status()
    again = pg_server.start()
    assert again.running and again.pid == before.pid
    assert again.host == "127.0.0.1" and again.port == pg_server.port
    assert again.version.startswith("PostgreSQL 18")
    assert "vector" in again.extensions and "plpgsql" in again.extensions
    assert "running" in again.describe() and str(pg_server.data_dir) in again.describe()


def test_tcp_on_loopback_with_password_and_both_databases(pg_server):
    with psycopg.connect(pg_server.url("fks")) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0] >= "0.8"
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert {"fks", "dagster"} <= names
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://fks:wrong@127.0.0.1:{pg_server.port}/fks")


def test_password_is_generated_once_and_private(pg_server):
    first = pg_server.password()
    assert first == pg_server.password() and len(first) >= 24
    mode = stat.S_IMODE(pg_server.password_file.stat().st_mode)
    assert mode == 0o600


def test_root_runs_the_server_as_an_unprivileged_user(pg_server):
    if os.geteuid() != 0:
        pytest.skip("only meaningful when the tests run as root (as CI does)")
    pid = pg_server.status().pid
    with open(f"/proc/{pid}/status") as fh:
        uid = next(int(line.split()[1]) for line in fh if line.startswith("Uid:"))
    assert uid != 0


def test_stop_and_restart_keep_the_data(server_home):
    server = EmbeddedPostgres(server_home, port=free_port())
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
        assert server.stop() is True
        assert server.stop() is False
        assert not server.status().running
        server.start()
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    finally:
        server.stop()


def test_port_taken_by_someone_else_is_a_clear_error(server_home, pg_server):
    other = EmbeddedPostgres(server_home, port=pg_server.port)
    with pytest.raises(DatabaseError, match=f"port 127.0.0.1:{pg_server.port} is already in use"):
        other.start()

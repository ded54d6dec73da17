"""The embedded PostgreSQL server the project starts and owns."""

from __future__ import annotations

import os
import re
import stat
import subprocess

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
    with pytest.raises(
        DatabaseError, match=f"port 127.0.0.1:{pg_server.port} is in use by the embedded server of {pg_server.home}"
    ):
        other.start()


# -- who may reach the server: only its owner through the socket, the password over TCP --------------------
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="running a process as another OS user needs root (as CI runs)"
)


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(cmd), user="nobody", group="nogroup", extra_groups=[], cwd="/", capture_output=True, text=True, timeout=60
    )


def _nobody_runs_a_program_through_the_socket(server: EmbeddedPostgres) -> subprocess.CompletedProcess:
    """What an attacker with a local account would try: the superuser over the socket, then a shell as the server."""
    return _as_nobody(
        str(server.bin_path / "psql"),
        "-h",
        str(server.socket_dir),
        "-p",
        str(server.port),
        "-U",
        "fks",
        "-d",
        "fks",
        "-X",
        "-A",
        "-t",
        "-w",
        "-c",
        "COPY (SELECT 1) TO PROGRAM 'id'",
    )


def _local_rules(server: EmbeddedPostgres) -> list[list[str]]:
    lines = (server.data_dir / "pg_hba.conf").read_text().splitlines()
    return [line.split() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@needs_root
def test_another_os_user_cannot_use_the_socket(pg_server):
    refused = _nobody_runs_a_program_through_the_socket(pg_server)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stdout
    assert stat.S_IMODE(pg_server.socket_dir.stat().st_mode) == 0o700
    with psycopg.connect(pg_server.url()) as conn:
        assert conn.execute("SHOW unix_socket_permissions").fetchone() == ("0700",)


def test_no_login_without_the_password_even_on_the_socket(pg_server):
    assert not [rule for rule in _local_rules(pg_server) if "trust" in rule]
    socket = f"host={pg_server.socket_dir} port={pg_server.port} user=fks dbname=fks"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(socket)
    with psycopg.connect(f"{socket} password={pg_server.password()}") as conn:  # root's own processes still connect
        assert conn.execute("SELECT current_user").fetchone() == ("fks",)


@needs_root
def test_a_data_dir_from_an_earlier_version_is_locked_down_on_start(server_home):
    server = EmbeddedPostgres(server_home, port=free_port())
    server.start()
    try:
        # As earlier versions left it: every local socket login trusted, FKS_HOME given o+x, the socket open to all.
        hba = server.data_dir / "pg_hba.conf"
        hba.write_text(re.sub(r"^(local\s.*)scram-sha-256$", r"\1trust", hba.read_text(), flags=re.MULTILINE))
        server_home.chmod(0o701)
        server.socket_dir.chmod(0o755)
        (server.socket_dir / f".s.PGSQL.{server.port}").chmod(0o777)
        with psycopg.connect(server.url()) as conn:
            conn.execute("SELECT pg_reload_conf()")
        assert _nobody_runs_a_program_through_the_socket(server).returncode == 0  # the hole this test is about
        server.start()
        refused = _nobody_runs_a_program_through_the_socket(server)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
        assert stat.S_IMODE(server.socket_dir.stat().st_mode) == 0o700
        assert not [rule for rule in _local_rules(server) if "trust" in rule]
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"host={server.socket_dir} port={server.port} user=fks dbname=fks")
    finally:
        server.stop()


@needs_root
def test_fks_home_and_its_parents_stay_closed_to_others(server_home):
    parent = server_home / "private"
    parent.mkdir(mode=0o700)
    home = parent / "fks"
    home.mkdir(mode=0o700)
    server = EmbeddedPostgres(home, port=free_port())
    server.start()  # the server user reaches its data through both folders ...
    try:
        for folder in (server_home, parent, home):
            assert not folder.stat().st_mode & stat.S_IXOTH, f"{folder} was opened to others"
        denied = _as_nobody("stat", str(home / "pgdata"))  # ... and no other account does
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()


def test_url_only_for_the_server_of_this_home(server_home, pg_server):
    other = EmbeddedPostgres(server_home, port=pg_server.port)  # another checkout, same port as a running server
    with pytest.raises(DatabaseError, match=f"server of {server_home} is not running"):
        other.url()
    assert pg_server.url().endswith(f"@127.0.0.1:{pg_server.port}/fks")

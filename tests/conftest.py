"""Shared fixtures: one real embedded PostgreSQL for the session, a fresh database per test.

The server is the project's own EmbeddedPostgres (PostgreSQL 18 + pgvector) under a temporary FKS_HOME on a
free port, so tests never touch a developer's ./.fks. Each test that asks for ``db_url`` gets its own
database, dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from fks_pipelines.lib.db.embedded import free_port

# Another PostgreSQL 18 build for the session server, e.g. one with TimescaleDB (see README, "TimescaleDB"):
# FKS_PG_BIN_DIR=/path/to/bin make test runs the whole suite on the TimescaleDB path. The only variable kept.
PG_BIN_DIR = os.environ.get("FKS_PG_BIN_DIR") or None


def _fresh_home() -> Path:
    # Not under pytest's tmp_path: pytest resets its base folder to mode 0700 when another pytest process
    # starts, which would cut the unprivileged server user (see EmbeddedPostgres) off its data directory.
    return Path(tempfile.mkdtemp(prefix="fks-test-home-"))


def _isolated_environment() -> tuple[Path, int]:
    """The session's own FKS_HOME on a free port, set before any test module is imported: the definitions are
    built at import from ``settings()``, so a developer's FKS_* variables, ./.fks or the settings.env a demo
    recorded there (its partition start) would otherwise shape every test's partitions, and the demo's
    server would hold the default port."""
    for key in list(os.environ):
        if key.startswith("FKS_") or key == "DAGSTER_HOME":
            del os.environ[key]
    home, port = _fresh_home(), free_port()
    os.environ["FKS_HOME"] = str(home)
    os.environ["FKS_PG_PORT"] = str(port)
    return home, port


SESSION_HOME, SESSION_PORT = _isolated_environment()

from fks_pipelines.lib.db.connect import connect, migrate, with_database  # noqa: E402 - after the isolation
from fks_pipelines.lib.db.embedded import EmbeddedPostgres  # noqa: E402
from fks_pipelines.lib.db.timescale import TimescaleOptions  # noqa: E402
from fks_pipelines.settings import settings  # noqa: E402

settings.cache_clear()  # nothing read before the isolation survives it

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "binance"


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


# Fixtures that mean a test needs the real server, a Dagster run or the embedding model: such a test is
# "integration"; every other test is "quick" (pure code, local HTTP servers at most). `make test-quick` runs
# the quick ones; `make test` runs everything.
_INTEGRATION_FIXTURES = {"pg_server", "databases", "db_url", "conn", "server_home", "embedder", "pipeline", "dbt"}
_INTEGRATION_FOLDERS = ("defs", "dbt", "launchers")


def _selects_integration(markexpr: str) -> bool:
    """Whether ``-m markexpr`` can select a test marked ``integration`` (and not ``quick``), whatever other
    markers it carries: every test under _INTEGRATION_FOLDERS is such a test."""
    from itertools import product

    from _pytest.mark.expression import Expression

    expression = Expression.compile(markexpr)
    others = sorted(expression.idents() - {"integration", "quick"})
    for values in product((False, True), repeat=len(others)):
        marks = {"integration": True, "quick": False, **dict(zip(others, values, strict=True))}
        if expression.evaluate(lambda name, /, marks=marks, **kwargs: marks.get(name, False)):
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    """`make test-quick` does not import the integration folders' modules at all: they build the Dagster
    definitions (dbt's manifest, every layer) at import, seconds spent to deselect every test they hold."""
    markexpr = config.getoption("markexpr")
    if not markexpr or collection_path.parent != PROJECT_ROOT / "tests":
        return None
    if collection_path.name in _INTEGRATION_FOLDERS and not _selects_integration(markexpr):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = Path(str(item.fspath)).relative_to(PROJECT_ROOT / "tests").parts[0]
        heavy = _INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())) or folder in _INTEGRATION_FOLDERS
        if item.get_closest_marker("integration") is None and item.get_closest_marker("quick") is None:
            item.add_marker(pytest.mark.integration if heavy else pytest.mark.quick)


@pytest.fixture(scope="session")
def pg_server() -> EmbeddedPostgres:
    home = _fresh_home()
    server = EmbeddedPostgres(home, port=free_port(), bin_path=PG_BIN_DIR)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def server_home() -> Path:
    """A FKS_HOME for a test that starts its own embedded server (stopped by the test)."""
    home = _fresh_home()
    yield home
    shutil.rmtree(home, ignore_errors=True)


class Databases:
    """Creates fresh databases (platform migrations applied) on the session server and drops them at the end."""

    def __init__(self, server: EmbeddedPostgres):
        self.admin = server.url("postgres")
        self.created: list[str] = []

    def create(self, timescale: TimescaleOptions | None = None) -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        url = with_database(self.admin, name)
        with connect(url) as conn:
            migrate(conn, timescale)
        return url

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def databases(pg_server: EmbeddedPostgres) -> Databases:
    return Databases(pg_server)


@pytest.fixture
def db_url(databases: Databases) -> str:
    """A fresh, empty database on the session server, with the platform's migrations applied."""
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
def conn(db_url: str):
    with connect(db_url) as connection:
        yield connection


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Binance data not found at {SHARED_DATA} (../shared/data/binance beside the checkout)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_fks_home(tmp_path, monkeypatch):
    """No test reads the developer's environment: FKS_* settings start unset, FKS_HOME is temporary and the port
    is the session's free one (never the default 54329 a developer's server may hold)."""
    for key in list(os.environ):
        if key.startswith("FKS_") or key == "DAGSTER_HOME":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FKS_HOME", str(tmp_path / "fks_home"))
    monkeypatch.setenv("FKS_PG_PORT", str(SESSION_PORT))
    settings.cache_clear()  # settings() is read once per process; each test starts from its own environment
    yield
    settings.cache_clear()


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 (from its wheel, on the CPU), loaded once for the session."""
    from fks_pipelines.lib.rag.embedder import Embedder

    model = Embedder(device="cpu")
    model.encoder  # noqa: B018 - load now, not inside the first test's timing
    return model

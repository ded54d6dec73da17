"""Shared fixtures: one real embedded PostgreSQL for the session, a fresh database per test.

The server is the project's own EmbeddedPostgres (PostgreSQL 18 + pgvector) under a temporary FKS_HOME on a
free port, so tests never touch a developer's ./.fks. Each test that asks for ``db_url`` gets its own
database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest

from fks_pipelines.lib.db.connect import connect, migrate, with_database
from fks_pipelines.lib.db.embedded import EmbeddedPostgres, free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "binance"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> EmbeddedPostgres:
    home = tmp_path_factory.mktemp("fks_home")
    server = EmbeddedPostgres(home, port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db_url(pg_server: EmbeddedPostgres) -> str:
    """A fresh, empty database on the session server, with the platform's migrations applied."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = pg_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin, name)
    with connect(url) as conn:
        migrate(conn)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    """No test reads the developer's environment: FKS_* settings start unset and FKS_HOME is temporary."""
    for key in list(os.environ):
        if key.startswith("FKS_") or key == "DAGSTER_HOME":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FKS_HOME", str(tmp_path / "fks_home"))

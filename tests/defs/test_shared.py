"""The resources every layer shares: the notifier (one way to tell people things) and the database (its schema
brought up to date when Dagster initializes it, with no per-process memory of what was migrated)."""

from __future__ import annotations

import logging
import uuid

import psycopg
from dagster import build_resources

from fks_pipelines.defs.shared import NotifierResource, PostgresResource
from fks_pipelines.lib.db.connect import with_database
from tests.support import Reply, ScriptedServer


def test_the_notifier_logs_instead_of_posting_without_a_webhook_and_never_raises(caplog):
    log = logging.getLogger("notify-test")
    with caplog.at_level(logging.INFO, logger="notify-test"):
        assert NotifierResource().post("the recommendation of 2024-05-20", "hello", log) is False
        with ScriptedServer(lambda request: Reply(500, b"discord down")) as hook:
            assert NotifierResource(discord_webhook_url=hook.url).post("run abc failed", "boom", log) is False
            assert len(hook.requests) == 1
        with ScriptedServer(lambda request: Reply(204)) as hook:
            assert NotifierResource(discord_webhook_url=hook.url).post("run def failed", "boom", log) is True
    assert [r.getMessage() for r in caplog.records] == [
        "the recommendation of 2024-05-20: DISCORD_WEBHOOK_URL not set, no post",
        "run abc failed: the Discord post failed: HTTP 500: discord down",
        "run def failed: posted to Discord",
    ]


def test_the_database_resource_migrates_an_empty_database_when_initialized(pg_server):
    admin = pg_server.url("postgres")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin, name)
    try:
        resource = PostgresResource(url=url, timescaledb=False)
        with build_resources({"database": resource}) as resources, resources.database.connection() as conn:
            applied = conn.execute("SELECT count(*) FROM public.fks_schema_migrations").fetchone()[0]
            tables = conn.execute("SELECT to_regclass('raw.binance_klines') IS NOT NULL").fetchone()[0]
        assert applied > 0 and tables
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

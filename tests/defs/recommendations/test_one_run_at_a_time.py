"""Runs of an asset that rewrites shared tables take turns: two sessions over one asset lock serialize (the
second names the first while it waits), and a materialization of recommendations/track_record started while
another run writes it waits for that run, says so in its log, and then succeeds. Every asset that writes shared
tables takes the lock."""

from __future__ import annotations

import threading

import psycopg
from dagster import DagsterInstance, materialize

from fks_pipelines.defs.portfolio.assets import profit_splits
from fks_pipelines.defs.recommendations.assets import daily_recommendations, evaluation, track_record
from fks_pipelines.defs.shared import PostgresResource
from fks_pipelines.lib.db.locks import advisory_lock, asset_lock
from tests.lib.quant.real_hourly import MART_DDL


def wait_until_waiting(url: str, application_name: str) -> None:
    """Block until a session named ``application_name`` waits on a lock (polls pg_stat_activity; no timing)."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application_name,),
        ).fetchone()[0]:
            conn.execute("SELECT pg_sleep(0.05)")


def test_two_sessions_over_one_asset_lock_take_turns_and_the_second_names_the_first(db_url):
    name = asset_lock("recommendations/daily")
    order: list[str] = []
    first_holds, release_first = threading.Event(), threading.Event()
    seen: list[str] = []

    def first() -> None:
        with advisory_lock(db_url, name, "recommendations/daily run aaaaaaaa"):
            order.append("first in")
            first_holds.set()
            release_first.wait()
            order.append("first out")

    def second() -> None:
        with advisory_lock(db_url, name, "recommendations/daily run bbbbbbbb", seen.append):
            order.append("second in")

    a = threading.Thread(target=first)
    a.start()
    first_holds.wait()
    b = threading.Thread(target=second)
    b.start()
    wait_until_waiting(db_url, "fks recommendations/daily run bbbbbbbb")
    assert order == ["first in"] and seen == ["fks recommendations/daily run aaaaaaaa"]
    release_first.set()
    a.join()
    b.join()
    assert order == ["first in", "first out", "second in"]


def test_a_run_waits_for_the_run_writing_the_asset_and_logs_its_name(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:  # the marts dbt builds, empty: nothing to score yet
        conn.execute(MART_DDL)  # the marts dbt builds, as tables
    instance = DagsterInstance.ephemeral()
    release = threading.Event()
    holding = threading.Event()
    results = []

    def other_run() -> None:
        with advisory_lock(
            db_url, asset_lock("recommendations/track_record"), "recommendations/track_record run 0th3r000"
        ):
            holding.set()
            release.wait()

    holder = threading.Thread(target=other_run)
    holder.start()
    holding.wait()
    runner = threading.Thread(
        target=lambda: results.append(
            materialize([track_record], resources={"database": PostgresResource(url=db_url)}, instance=instance)
        )
    )
    runner.start()
    with psycopg.connect(db_url, autocommit=True) as conn:  # the run's own lock session, once it waits
        while not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND application_name LIKE 'fks recommendations/track_record run %%'"
            " AND application_name <> 'fks recommendations/track_record run 0th3r000'"
        ).fetchone()[0]:
            conn.execute("SELECT pg_sleep(0.05)")
    assert runner.is_alive() and not results  # it waits; nothing of it ran
    release.set()
    holder.join()
    runner.join()
    assert results[0].success
    messages = [e.user_message for e in instance.all_logs(results[0].run_id)]
    assert any(
        "recommendations/track_record is being written by recommendations/track_record run 0th3r000" in m
        for m in messages
    )


def test_every_asset_writing_shared_tables_takes_its_lock():
    from fks_pipelines.defs.analytics.assets import market_regimes, signals, strategy_choices
    from fks_pipelines.defs.knowledge.assets import document_embeddings, documents

    written = (daily_recommendations, track_record, evaluation, profit_splits)
    for assets_def in (*written, strategy_choices, signals, market_regimes, documents, document_embeddings):
        fn = assets_def.op.compute_fn.decorated_fn
        assert fn.__code__.co_qualname == "one_run_at_a_time.<locals>.serialized", assets_def.key


def test_the_code_references_of_the_serialized_assets_point_at_their_own_files():
    from fks_pipelines.definitions import defs

    for key, file in (
        ("recommendations/daily", "recommendations/assets.py"),
        ("portfolio/profit_splits", "portfolio/assets.py"),
        ("analytics/signals", "analytics/assets.py"),
        ("knowledge/documents", "knowledge/assets.py"),
    ):
        spec = next(s for s in defs.resolve_all_asset_specs() if s.key.to_user_string() == key)
        references = spec.metadata["dagster/code_references"].code_references
        assert any(r.file_path.endswith(f"fks_pipelines/defs/{file}") for r in references), references

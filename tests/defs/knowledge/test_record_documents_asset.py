"""knowledge/record_documents through Dagster on a small record: it writes the three record kinds, leaves the daily
kinds alone, embeds what it wrote, reports its counts, and a re-run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from dagster import materialize

from fks_pipelines.defs.knowledge.assets import record_documents
from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, PostgresResource
from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.rag.documents import market_summary
from tests.lib.rag.record_ledger import SYMBOLS, write_record


def run(url: str):
    result = materialize(
        [record_documents],
        resources={
            "database": PostgresResource(url=url),
            "market_data": MarketDataResource(symbols=list(SYMBOLS)),
            "embedding_model": EmbeddingModelResource(device="cpu"),
        },
    )
    assert result.success
    return result.asset_materializations_for_node("knowledge__record_documents")[0].metadata


def test_the_asset_writes_the_record_and_a_rerun_changes_nothing(db_url):
    day = {
        "market": "spot",
        "symbol": "BTCUSDT",
        "bucket": datetime(2024, 3, 5, tzinfo=UTC),
        "open": 100.0,
        "high": 101.0,
        "low": 99.0,
        "close": 100.5,
        "volume": 10.0,
    }
    with psycopg.connect(db_url, autocommit=True) as conn:
        write_record(conn)
        summary = market_summary(day, None, None)  # a daily kind: the record's rebuild must leave it
        knowledge.replace_documents(conn, [summary], knowledge.DocumentScope(kinds=["market_summary"]))
    first = run(db_url)
    assert (first["documents_trade"].value, first["documents_position"].value) == (6, 2)
    assert first["documents_recommendation"].value == 4  # ETH's hold of day 2 asked for no trade
    assert first["inserted"].value == first["documents"].value == first["dagster/row_count"].value == 12
    assert first["dagster/table_name"].value == "knowledge.documents"
    with psycopg.connect(db_url) as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM knowledge.documents GROUP BY kind").fetchall())
        ids = conn.execute("SELECT id FROM knowledge.documents ORDER BY id").fetchall()
    assert kinds == {"trade": 6, "position": 2, "recommendation": 4, "market_summary": 1}
    # Embedded at once (the summary too: nothing had embedded it), so the search finds them the same day.
    assert first["embedded"].value == 13
    with psycopg.connect(db_url) as conn:
        assert knowledge.embedding_backlog(conn) == 0
    again = run(db_url)
    assert (again["inserted"].value, again["replaced"].value, again["deleted"].value) == (0, 0, 0)
    assert again["embedded"].value == 0
    assert again["unchanged"].value == 12
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT id FROM knowledge.documents ORDER BY id").fetchall() == ids
    # A trade that is gone from the ledger takes its documents with it (its trade, its position, and the
    # recommendations whose stop fill it was).
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM portfolio.trades WHERE trade_id LIKE '%-sl'")
    pruned = run(db_url)
    assert pruned["deleted"].value >= 2 and pruned["documents_position"].value == 1

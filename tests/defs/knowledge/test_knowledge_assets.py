"""The knowledge group through Dagster: documents per day, embeddings on the GPU marker, idempotent re-runs."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from dagster import AssetKey, materialize

from fks_pipelines.definitions import defs
from fks_pipelines.defs.knowledge.assets import document_embeddings, documents
from fks_pipelines.defs.shared import (
    GPU_POOL,
    GPU_TAG_KEY,
    EmbeddingModelResource,
    MarketDataResource,
    PostgresResource,
)
from fks_pipelines.lib.db.knowledge import search
from tests.defs.conftest import SYMBOLS

START, END = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 25, tzinfo=UTC)


def test_the_all_assets_job_builds_and_embeds_documents(pipeline):
    url, result = pipeline
    events = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()}
    embedded = events["knowledge/document_embeddings"].materialization.metadata
    assert embedded["model"].value == "all-MiniLM-L6-v2" and embedded["dimension"].value == 384
    assert embedded["device"].value == "cpu" and embedded["documents_embedded"].value > 48
    with psycopg.connect(url) as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM knowledge.documents GROUP BY kind").fetchall())
        assert kinds["market_summary"] == 24 * len(SYMBOLS) and kinds["strategy_summary"] >= len(SYMBOLS)
        first, last = conn.execute("SELECT min(as_of), max(as_of) FROM knowledge.documents").fetchone()
        assert first > START and last <= END
        missing = conn.execute(
            "SELECT count(*) FROM knowledge.documents d"
            " WHERE NOT EXISTS (SELECT 1 FROM knowledge.chunks c WHERE c.document_id = d.id)"
        ).fetchone()[0]
        assert missing == 0


def test_embeddings_carry_the_gpu_marker():
    spec = defs.resolve_assets_def(AssetKey(["knowledge", "document_embeddings"]))
    assert spec.op.tags.get(GPU_TAG_KEY) == "true" and spec.op.pool == GPU_POOL
    assert GPU_TAG_KEY not in defs.resolve_assets_def(AssetKey(["knowledge", "documents"])).op.tags


def test_rerunning_a_day_changes_nothing_and_embeds_nothing(pipeline):
    url, _ = pipeline
    resources = {
        "database": PostgresResource(url=url),
        "market_data": MarketDataResource(symbols=SYMBOLS),
        "embedding_model": EmbeddingModelResource(device="cpu"),
    }
    with psycopg.connect(url) as conn:
        before = conn.execute(
            "SELECT id, embedded_at FROM knowledge.documents JOIN knowledge.chunks ON document_id = id ORDER BY id"
        ).fetchall()
    result = materialize([documents, document_embeddings], partition_key="2024-05-10", resources=resources)
    docs = result.asset_materializations_for_node("knowledge__documents")[0].metadata
    assert docs["documents"].value >= len(SYMBOLS)
    assert (docs["run_inserted"].value, docs["run_replaced"].value, docs["run_deleted"].value) == (0, 0, 0)
    assert docs["run_unchanged"].value == docs["run_documents"].value == docs["documents"].value  # a one-day run
    assert (
        result.asset_materializations_for_node("knowledge__document_embeddings")[0].metadata["documents_embedded"].value
        == 0
    )
    with psycopg.connect(url) as conn:
        after = conn.execute(
            "SELECT id, embedded_at FROM knowledge.documents JOIN knowledge.chunks ON document_id = id ORDER BY id"
        ).fetchall()
    assert after == before


def test_point_in_time_search_over_the_pipelines_documents(pipeline, embedder):
    url, _ = pipeline
    as_of = datetime(2024, 5, 10, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        hits = search(conn, embedder.encode(["ETHUSDT daily summary: volatility and regime"])[0], 8, as_of=as_of)
        rare = search(
            conn,
            embedder.encode(["walk-forward validation chose a strategy"])[0],
            3,
            as_of=END,
            kinds=["strategy_summary"],
        )
    assert len(hits) == 8 and all(h.as_of <= as_of for h in hits)
    assert sum(h.symbol == "ETHUSDT" for h in hits) >= 4  # the symbol in the question matters
    assert rare and all(h.kind == "strategy_summary" for h in rare)

"""knowledge.documents / knowledge.chunks on the real server: idempotent upserts, re-embedding only what changed,
HNSW recall against exact search, selective filters, and the point-in-time guarantee."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.db.roles import ANALYST, enable_analyst_login, url_for_role
from fks_pipelines.lib.rag.documents import Document
from fks_pipelines.lib.rag.embedder import Embedder
from fks_pipelines.lib.rag.index import embed_pending
from fks_pipelines.lib.rag.synthetic import clustered_vectors, queries_near

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCOPE = knowledge.DocumentScope(kinds=["market_summary"])


def summaries(n: int, changed: dict[int, str] | None = None) -> list[Document]:
    texts = {
        i: f"BTCUSDT day {i}: the price {'rose' if i % 2 else 'fell'} {i % 9}% with volume {i * 100}" for i in range(n)
    }
    texts |= changed or {}
    return [
        Document(
            key=f"market_summary/spot/BTCUSDT/{i}",
            kind="market_summary",
            as_of=T0 + timedelta(days=i),
            text=texts[i],
            market="spot",
            symbol="BTCUSDT",
        )
        for i in range(n)
    ]


def embedded_at(conn) -> dict[str, datetime]:
    return dict(conn.execute("SELECT document_id, embedded_at FROM knowledge.chunks").fetchall())


def test_reruns_are_idempotent_and_only_changed_documents_are_re_embedded(conn, embedder):
    first = knowledge.replace_documents(conn, summaries(20), SCOPE)
    assert (first.inserted, first.unchanged) == (20, 0)
    stats = embed_pending(conn, embedder)
    assert (stats.documents, stats.chunks, stats.table) == (20, 20, "created")
    before = embedded_at(conn)

    again = knowledge.replace_documents(conn, summaries(20), SCOPE)
    assert (again.inserted, again.replaced, again.unchanged, again.deleted) == (0, 0, 20, 0)
    assert embed_pending(conn, embedder).documents == 0
    assert conn.execute("SELECT count(*) FROM knowledge.documents").fetchone()[0] == 20

    # Day 3's text changes, day 19 is no longer produced: one replacement, one deletion, one new embedding.
    edited = summaries(19, changed={3: "BTCUSDT day 3: restated after a data fix"})
    result = knowledge.replace_documents(conn, edited, SCOPE)
    assert (result.inserted, result.replaced, result.unchanged, result.deleted) == (0, 1, 18, 1)
    assert embed_pending(conn, embedder).documents == 1
    after = embedded_at(conn)
    unchanged_ids = {d.id for d in edited} - {edited[3].id}
    assert all(after[i] == before[i] for i in unchanged_ids)  # untouched embeddings kept
    assert edited[3].id in after and summaries(20)[3].id not in after and len(after) == 19


def test_a_model_change_re_embeds_everything_on_the_old_model(conn, embedder, tmp_path):
    knowledge.replace_documents(conn, summaries(5), SCOPE)
    embed_pending(conn, embedder)
    copy = tmp_path / "model"
    shutil.copytree(embedder.directory, copy)
    (copy / "README.md").write_text("fine-tuned\n")
    retrained = Embedder(model="all-MiniLM-L6-v2-ft", model_path=str(copy), device="cpu")
    stats = embed_pending(conn, retrained)
    assert (stats.documents, stats.remaining_old_model) == (5, 0)
    models = conn.execute("SELECT DISTINCT model, model_version FROM knowledge.chunks").fetchall()
    assert models == [("all-MiniLM-L6-v2-ft", retrained.version)]
    # Another dimension: the column is retyped and emptied, so the next run embeds everything again.
    assert knowledge.ensure_chunk_table(conn, 8) == "retyped" and knowledge.chunk_dimension(conn) == 8
    assert conn.execute("SELECT count(*) FROM knowledge.chunks").fetchone()[0] == 0


@pytest.fixture
def synthetic(conn):
    """3,000 single-chunk documents with clustered random 384-d vectors; 1% are symbol RARE."""
    rng = np.random.default_rng(7)
    n = 3000
    vectors, _ = clustered_vectors(n, 384, rng, clusters=20)
    symbols = np.where(np.arange(n) % 100 == 0, "RARE", np.where(np.arange(n) % 2 == 0, "BTCUSDT", "ETHUSDT"))
    docs = [
        Document(
            key=f"doc/{i}",
            kind="signal_event" if i % 3 else "market_summary",
            as_of=T0 + timedelta(hours=i),
            text=f"document {i}",
            symbol=str(symbols[i]),
        )
        for i in range(n)
    ]
    knowledge.replace_documents(conn, docs, knowledge.DocumentScope())
    knowledge.ensure_chunk_table(conn, 384)
    rows = (
        (d.id, 0, d.kind, d.symbol, d.as_of, 0, len(d.text), d.text, "synthetic", "1", v)
        for d, v in zip(docs, vectors, strict=True)
    )
    knowledge.write_chunks(conn, rows, [d.id for d in docs])
    return docs, vectors, rng


def exact(docs, vectors, query, k, as_of, symbols=None, kinds=None) -> list[str]:
    ok = np.array(
        [
            d.as_of <= as_of and (symbols is None or d.symbol in symbols) and (kinds is None or d.kind in kinds)
            for d in docs
        ]
    )
    distance = np.where(ok, 1 - vectors @ query, np.inf)
    return [docs[i].id for i in np.argsort(distance, kind="stable")[:k] if np.isfinite(distance[i])]


def test_hnsw_search_matches_exact_search(conn, synthetic):
    docs, vectors, rng = synthetic
    queries = queries_near(vectors, 40, rng)
    end = T0 + timedelta(hours=len(docs))
    recall = [
        len(set(exact(docs, vectors, q, 10, end)) & {h.document_id for h in knowledge.search(conn, q, 10, as_of=end)})
        / 10
        for q in queries
    ]
    assert np.mean(recall) >= 0.99, np.mean(recall)
    hits = knowledge.search(conn, queries[0], 10, as_of=end)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    nearest = next(i for i, d in enumerate(docs) if d.id == hits[0].document_id)
    assert hits[0].distance == pytest.approx(float(1 - vectors[nearest] @ queries[0]), abs=1e-5)  # cosine distance


def test_selective_filters_still_return_k_results(conn, synthetic):
    docs, vectors, rng = synthetic
    end = T0 + timedelta(hours=len(docs))
    for q in queries_near(vectors, 10, rng):
        hits = knowledge.search(conn, q, 10, as_of=end, symbols=["RARE"])  # 30 of 3,000 rows match
        assert len(hits) == 10 and {h.symbol for h in hits} == {"RARE"}
        assert [h.document_id for h in hits] == exact(docs, vectors, q, 10, end, symbols={"RARE"})
        kinds = knowledge.search(conn, q, 10, as_of=end, kinds=["market_summary"], symbols=["ETHUSDT"])
        assert len(kinds) == 10 and {(h.kind, h.symbol) for h in kinds} == {("market_summary", "ETHUSDT")}


def test_search_never_returns_a_document_from_after_as_of(conn, synthetic):
    docs, vectors, rng = synthetic
    for _ in range(25):
        cut = T0 + timedelta(hours=int(rng.integers(5, len(docs))))
        q = vectors[int(rng.integers(0, len(docs)))]  # often a document from after the cut: distance 0
        hits = knowledge.search(conn, q, 10, as_of=cut)
        assert hits and all(h.as_of <= cut for h in hits)
        assert {h.document_id for h in hits} == set(exact(docs, vectors, q, 10, cut)) or len(hits) == 10
    # The query's own document is found exactly when the search is as of its time or later.
    target = docs[2500]
    q = vectors[2500]
    assert knowledge.search(conn, q, 1, as_of=target.as_of)[0].document_id == target.id
    assert knowledge.search(conn, q, 1, as_of=target.as_of - timedelta(microseconds=1))[0].document_id != target.id
    with pytest.raises(ValueError, match="timezone-aware"):
        knowledge.search(conn, q, 1, as_of=datetime(2024, 1, 1))


def test_analysts_can_search_but_not_write(conn, db_url, synthetic):
    docs, vectors, _ = synthetic
    enable_analyst_login(conn, "analyst-pw")
    with psycopg.connect(url_for_role(db_url, ANALYST, "analyst-pw")) as analyst:
        literal = "[" + ",".join(f"{x:.7f}" for x in vectors[42]) + "]"
        rows = analyst.execute(
            "SELECT document_id, document_as_of FROM knowledge.search(%s::vector, 5, %s)", (literal, docs[-1].as_of)
        ).fetchall()
        assert rows[0][0] == docs[42].id and len(rows) == 5
        like = analyst.execute(
            "SELECT document_id FROM knowledge.similar_to('doc/42', 3, %s)", (docs[-1].as_of,)
        ).fetchall()
        assert len(like) == 3 and docs[42].id not in {r[0] for r in like}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute("DELETE FROM knowledge.documents")


def test_the_chunk_table_is_built_by_the_migrations_ddl_sized_to_the_model(conn):
    """Migration 020 holds the chunk table's DDL as a function of the dimension: the first call creates the table,
    its HNSW index (with the build parameters the store documents) and the search functions; the same dimension
    changes nothing; the store runs no DDL of its own."""
    assert knowledge.chunk_dimension(conn) is None
    assert knowledge.ensure_chunk_table(conn, 5) == "created"
    assert knowledge.ensure_chunk_table(conn, 5) == "unchanged"
    assert knowledge.chunk_dimension(conn) == 5
    options = conn.execute(
        "SELECT c.reloptions FROM pg_class c WHERE c.oid = 'knowledge.chunks_embedding_hnsw'::regclass"
    ).fetchone()[0]
    assert sorted(options) == sorted([f"m={knowledge.HNSW_M}", f"ef_construction={knowledge.HNSW_EF_CONSTRUCTION}"])
    search = conn.execute(
        "SELECT pg_get_function_arguments(p.oid) FROM pg_proc p"
        " WHERE p.pronamespace = 'knowledge'::regnamespace AND p.proname = 'search'"
    ).fetchone()[0]
    assert search.endswith(f"ef_search integer DEFAULT {knowledge.DEFAULT_EF_SEARCH}")
    source = (Path(knowledge.__file__)).read_text()
    assert not re.search(r"\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|FUNCTION|OR REPLACE)\b", source)

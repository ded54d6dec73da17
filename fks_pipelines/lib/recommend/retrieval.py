"""What a decision reads from the knowledge layer: the top documents per symbol known at the decision time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import psycopg

from fks_pipelines.lib.db.knowledge import has_chunks, search
from fks_pipelines.lib.db.recommendations import Retriever
from fks_pipelines.lib.rag.embedder import Embedder
from fks_pipelines.lib.recommend.schema import RetrievedDocument


def retriever(conn: psycopg.Connection, embedder: Callable[[], Embedder], k: int = 4) -> Retriever:
    """``retrieve(symbol, at)``: the top-k documents about ``symbol`` with ``as_of <= at`` (none before anything is
    embedded; the model is loaded only when there is something to search)."""
    if not has_chunks(conn):
        return lambda symbol, at: []
    model = embedder()

    def retrieve(symbol: str, at: datetime) -> list[RetrievedDocument]:
        query = model.encode([f"{symbol}: latest market summary, strategy signals and walk-forward results"])[0]
        hits = search(conn, query, k, as_of=at, symbols=[symbol])
        return [RetrievedDocument(h.document_id, h.kind, h.symbol, h.as_of, h.text) for h in hits]

    return retrieve

"""Keeping the embeddings up to date: every document without chunks from the current model version is
chunked, embedded in batches and written (its old chunks, if any, replaced in the same transaction).
Unchanged documents are never re-embedded; a model change re-embeds everything still on the old model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.rag.embedder import Embedder


@dataclass(frozen=True)
class EmbedStats:
    documents: int
    chunks: int
    seconds: float
    table: str  # what ensure_chunk_table did
    remaining_old_model: int

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


def embed_pending(
    conn: psycopg.Connection,
    embedder: Embedder,
    *,
    batch_documents: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> EmbedStats:
    started = time.perf_counter()
    table = knowledge.ensure_chunk_table(conn, embedder.dimension)
    pending = knowledge.documents_to_embed(conn, embedder.model, embedder.version)
    documents = chunks = 0
    for i in range(0, len(pending), batch_documents):
        batch = pending[i : i + batch_documents]
        pieces = [(doc, chunk) for doc in batch for chunk in embedder.chunks(doc[4])]
        vectors = embedder.encode([chunk.text for _, chunk in pieces])
        rows = (
            (
                doc_id,
                chunk.index,
                kind,
                symbol,
                as_of,
                chunk.start,
                chunk.end,
                chunk.text,
                embedder.model,
                embedder.version,
                vector,
            )
            for ((doc_id, kind, symbol, as_of, _), chunk), vector in zip(pieces, vectors, strict=True)
        )
        chunks += knowledge.write_chunks(conn, rows, [doc[0] for doc in batch])
        documents += len(batch)
        if progress:
            progress(documents, len(pending))
    return EmbedStats(
        documents=documents,
        chunks=chunks,
        seconds=time.perf_counter() - started,
        table=table,
        remaining_old_model=knowledge.stale_model_chunks(conn, embedder.model, embedder.version),
    )

"""The ``knowledge`` schema's store: knowledge.documents and knowledge.chunks in PostgreSQL + pgvector, upserts by
content hash, embeddings by model version, and the point-in-time search (the SQL function ``knowledge.search``,
which Python calls too). What documents are built from is read through the marts' and analytics' stores
(``lib/rag/build.py``).

The chunk table's ``vector(n)`` takes its dimension from the embedding model, so its DDL is a SQL function of the
dimension (migration 020, ``knowledge.ensure_chunk_table``), called with the model's. Switching to a model of
another dimension empties the chunk table (every embedding belongs to the old model) and retypes the column
in one transaction; the next embedding run re-embeds every document.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from fks_pipelines.lib.db.connect import advisory_xact_lock, one_row
from fks_pipelines.lib.errors import DatabaseError

# The HNSW build parameters migration 020 creates the index with (a test checks they agree); the benchmark starts
# from them.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200  # 64 leaves some clusters unreachable on clustered data (recall 0 for a few queries)
DEFAULT_EF_SEARCH = 200  # recall@10 0.99 unfiltered, 1.0 with a 10% filter, on 200k clustered vectors (benchmarks)
MAX_K = 1000  # knowledge.search raises hnsw.ef_search to k, and pgvector caps ef_search at 1000


def require_pgvector(conn: psycopg.Connection) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
        raise DatabaseError(
            "the pgvector extension is not installed in this database (the embedded server ships it; on an "
            "external server install pgvector, e.g. the timescaledb-ha image, then re-run)"
        )


def chunk_dimension(conn: psycopg.Connection) -> int | None:
    """The vector dimension of knowledge.chunks.embedding, or None when the table does not exist yet."""
    row = conn.execute(
        "SELECT a.atttypmod FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass('knowledge.chunks') AND a.attname = 'embedding'"
    ).fetchone()
    return None if row is None else int(row[0])


def ensure_chunk_table(conn: psycopg.Connection, dimension: int, ef_search: int = DEFAULT_EF_SEARCH) -> str:
    """Create knowledge.chunks for ``dimension``-d embeddings (or retype it for a new dimension, emptying it), its
    HNSW index and the search functions. Returns what it did: 'created', 'retyped' or 'unchanged'. The DDL is
    migration 020's ``knowledge.ensure_chunk_table`` (the dimension comes from the model, not from a file)."""
    require_pgvector(conn)
    with conn.transaction():
        advisory_xact_lock(conn, "fks.knowledge.chunks", what="knowledge.chunks schema")
        return str(
            one_row(conn.execute("SELECT knowledge.ensure_chunk_table(%s, %s)", (int(dimension), int(ef_search))))[0]
        )


class DocumentRow(Protocol):
    """A document as ``knowledge.documents`` holds it (``lib/rag/documents.Document`` is one): ``id`` is the
    content hash, ``key`` what it is about, ``as_of`` when its information existed."""

    @property
    def id(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def market(self) -> str | None: ...
    @property
    def symbol(self) -> str | None: ...
    @property
    def as_of(self) -> datetime: ...
    @property
    def text(self) -> str: ...
    @property
    def metadata(self) -> dict: ...


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    unchanged: int
    replaced: int
    deleted: int


@dataclass(frozen=True)
class DocumentScope:
    """The documents a rebuild owns: those matching every field given (None matches anything); ``after`` and
    ``until`` bound ``as_of`` as after < as_of <= until."""

    kinds: Sequence[str] | None = None
    market: str | None = None
    symbols: Sequence[str] | None = None
    after: datetime | None = None
    until: datetime | None = None


def replace_documents(conn: psycopg.Connection, documents: Sequence[DocumentRow], scope: DocumentScope) -> UpsertResult:
    """Make the documents in ``scope`` exactly ``documents``, in one transaction: new keys are inserted, keys
    whose content changed are replaced (their chunks go with them), unchanged ones are left alone (and keep
    their embeddings), and documents in the scope that are no longer produced are deleted."""
    wanted = {d.key: d for d in documents}
    if len(wanted) != len(documents):
        raise ValueError("duplicate document keys")
    with conn.transaction():
        existing: dict[str, str] = dict(
            conn.execute(
                "SELECT key, id FROM knowledge.documents"
                " WHERE (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s))"
                " AND (%(market)s::text IS NULL OR market = %(market)s)"
                " AND (%(symbols)s::text[] IS NULL OR symbol = ANY(%(symbols)s))"
                " AND (%(after)s::timestamptz IS NULL OR as_of > %(after)s)"
                " AND (%(until)s::timestamptz IS NULL OR as_of <= %(until)s)",
                {
                    "kinds": list(scope.kinds) if scope.kinds is not None else None,
                    "market": scope.market,
                    "symbols": list(scope.symbols) if scope.symbols is not None else None,
                    "after": scope.after,
                    "until": scope.until,
                },
            ).fetchall()
        )
        outside = [k for k in wanted if k not in existing]
        if outside:  # keys that exist outside the scope would collide on the unique key: replace them too
            existing |= dict(
                conn.execute("SELECT key, id FROM knowledge.documents WHERE key = ANY(%s)", (outside,)).fetchall()
            )
        stale = [i for k, i in existing.items() if k not in wanted or wanted[k].id != i]
        if stale:
            conn.execute("DELETE FROM knowledge.documents WHERE id = ANY(%s)", (stale,))
        new = [d for k, d in wanted.items() if existing.get(k) != d.id]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO knowledge.documents (id, key, kind, market, symbol, as_of, text, metadata)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(d.id, d.key, d.kind, d.market, d.symbol, d.as_of, d.text, Jsonb(d.metadata)) for d in new],
            )
    replaced = sum(1 for d in new if d.key in existing)
    return UpsertResult(
        inserted=len(new) - replaced, unchanged=len(wanted) - len(new), replaced=replaced, deleted=len(stale) - replaced
    )


def documents_to_embed(conn: psycopg.Connection, model: str, version: str, limit: int | None = None) -> list[tuple]:
    """(id, kind, symbol, as_of, text) of documents with no chunks from this model version, oldest first."""
    return conn.execute(
        "SELECT d.id, d.kind, d.symbol, d.as_of, d.text FROM knowledge.documents d"
        " WHERE NOT EXISTS (SELECT 1 FROM knowledge.chunks c"
        " WHERE c.document_id = d.id AND c.model = %s AND c.model_version = %s)"
        " ORDER BY d.as_of, d.id" + (" LIMIT %s" if limit else ""),
        (model, version, limit) if limit else (model, version),
    ).fetchall()


def write_chunks(conn: psycopg.Connection, rows: Iterable[tuple], document_ids: Sequence[str]) -> int:
    """Replace the chunks of ``document_ids`` with ``rows`` (document_id, chunk_index, kind, symbol, as_of,
    start_char, end_char, text, model, model_version, embedding as float32 array), in one transaction, by COPY."""
    from pgvector.psycopg import register_vector

    register_vector(conn)
    n = 0
    with conn.transaction():
        conn.execute("DELETE FROM knowledge.chunks WHERE document_id = ANY(%s)", (list(document_ids),))
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY knowledge.chunks (document_id, chunk_index, kind, symbol, as_of, start_char, end_char, text,"
                " model, model_version, embedding) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def indexed_totals(conn: psycopg.Connection) -> tuple[int, int]:
    """(documents with at least one chunk, chunks) in knowledge.chunks, over every model."""
    row = conn.execute("SELECT count(DISTINCT document_id), count(*) FROM knowledge.chunks").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def stale_model_chunks(conn: psycopg.Connection, model: str, version: str) -> int:
    """Chunks embedded by another model or version (what a model change has left to re-embed)."""
    return one_row(
        conn.execute("SELECT count(*) FROM knowledge.chunks WHERE (model, model_version) <> (%s, %s)", (model, version))
    )[0]


@dataclass(frozen=True)
class SearchHit:
    document_id: str
    kind: str
    market: str | None
    symbol: str | None
    as_of: datetime  # the document's
    distance: float
    chunk_index: int
    chunk: str
    text: str
    metadata: dict


def search(
    conn: psycopg.Connection,
    query: np.ndarray,
    k: int = 10,
    *,
    as_of: datetime,
    symbols: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    ef_search: int = DEFAULT_EF_SEARCH,
) -> list[SearchHit]:
    """The k nearest documents to ``query`` whose as_of is at or before ``as_of`` (knowledge.search)."""
    from pgvector.psycopg import register_vector

    if as_of is None or as_of.tzinfo is None:
        raise ValueError("as_of must be a timezone-aware time (point-in-time search needs one)")
    register_vector(conn)
    rows = conn.execute(
        "SELECT * FROM knowledge.search(%s, %s, %s, %s, %s, %s)",
        (
            np.asarray(query, dtype=np.float32),
            k,
            as_of,
            list(symbols) if symbols else None,
            list(kinds) if kinds else None,
            ef_search,
        ),
    ).fetchall()
    return [SearchHit(*r) for r in rows]


def has_chunks(conn: psycopg.Connection) -> bool:
    """Whether ``knowledge.chunks`` exists (it is created with the first embeddings, sized to the model)."""
    return one_row(conn.execute("SELECT to_regclass('knowledge.chunks')"))[0] is not None


@dataclass(frozen=True)
class HybridHit:
    document_id: str
    key: str
    kind: str
    market: str | None
    symbol: str | None
    as_of: datetime  # the document's
    score: float  # reciprocal-rank fusion: 1/(rrf_k + text rank) + 1/(rrf_k + vector rank)
    text_rank: int | None  # None: not among the full-text candidates
    vector_rank: int | None  # None: not among the vector candidates (or no query vector)
    text: str
    metadata: dict


def hybrid_search(
    conn: psycopg.Connection,
    question: str,
    query: np.ndarray | None,
    k: int = 10,
    *,
    as_of: datetime,
    symbols: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
) -> list[HybridHit]:
    """The k documents known by ``as_of`` that best match ``question`` in words (full-text) and ``query`` in
    meaning (its embedding; None ranks by words only), fused by reciprocal rank (knowledge.hybrid_search)."""
    from pgvector.psycopg import register_vector

    if as_of is None or as_of.tzinfo is None:
        raise ValueError("as_of must be a timezone-aware time (point-in-time search needs one)")
    register_vector(conn)
    rows = conn.execute(
        "SELECT document_id, key, kind, market, symbol, document_as_of, score, text_rank, vector_rank, text, metadata"
        " FROM knowledge.hybrid_search(%s, %s, %s, %s, %s, %s)",
        (
            question,
            None if query is None else np.asarray(query, dtype=np.float32),
            k,
            as_of,
            list(symbols) if symbols else None,
            list(kinds) if kinds else None,
        ),
    ).fetchall()
    return [HybridHit(*r) for r in rows]


@dataclass(frozen=True)
class StoredDocument:
    id: str
    key: str
    kind: str
    market: str | None
    symbol: str | None
    as_of: datetime
    text: str
    metadata: dict


_DOCUMENT_COLUMNS = "id, key, kind, market, symbol, as_of, text, metadata"


def documents_between(
    conn: psycopg.Connection, symbol: str, kinds: Sequence[str], after: datetime, until: datetime
) -> list[StoredDocument]:
    """Documents of ``kinds`` about ``symbol`` with after < as_of <= until, newest first (by time, not similarity:
    a decision's own day)."""
    rows = conn.execute(
        f"SELECT {_DOCUMENT_COLUMNS} FROM knowledge.documents"
        " WHERE symbol = %s AND kind = ANY(%s) AND as_of > %s AND as_of <= %s ORDER BY as_of DESC, key",
        (symbol, list(kinds), after, until),
    ).fetchall()
    return [StoredDocument(*r) for r in rows]


def documents_by_id(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, StoredDocument]:
    """The stored documents among ``ids``, by id (ids no longer stored are absent)."""
    rows = conn.execute(
        f"SELECT {_DOCUMENT_COLUMNS} FROM knowledge.documents WHERE id = ANY(%s)", (list(ids),)
    ).fetchall()
    return {r[0]: StoredDocument(*r) for r in rows}


def latest_document(conn: psycopg.Connection, symbol: str, kind: str, until: datetime) -> StoredDocument | None:
    """The newest document of ``kind`` about ``symbol`` with as_of <= until (None when there is none)."""
    row = conn.execute(
        f"SELECT {_DOCUMENT_COLUMNS} FROM knowledge.documents"
        " WHERE symbol = %s AND kind = %s AND as_of <= %s ORDER BY as_of DESC, key LIMIT 1",
        (symbol, kind, until),
    ).fetchone()
    return None if row is None else StoredDocument(*row)


def document_embedding(conn: psycopg.Connection, document_id: str) -> np.ndarray | None:
    """The embedding of a document's first chunk (None when it is not embedded yet)."""
    from pgvector.psycopg import register_vector

    if not has_chunks(conn):
        return None
    register_vector(conn)
    row = conn.execute(
        "SELECT embedding FROM knowledge.chunks WHERE document_id = %s AND chunk_index = 0", (document_id,)
    ).fetchone()
    return None if row is None else np.asarray(row[0], dtype=np.float32)


def nearest_before(
    conn: psycopg.Connection, query: np.ndarray, k: int, kind: str, before: datetime, market: str | None = None
) -> list[StoredDocument]:
    """The k documents of ``kind`` nearest to ``query`` (cosine) whose as_of is strictly before ``before``,
    optionally of one market, nearest first (knowledge.search with an as_of just before ``before``)."""
    from pgvector.psycopg import register_vector

    register_vector(conn)
    rows = conn.execute(
        f"SELECT {', '.join('d.' + c.strip() for c in _DOCUMENT_COLUMNS.split(','))}"
        " FROM knowledge.search(%s, %s, %s - interval '1 microsecond', NULL, ARRAY[%s]) s"
        " JOIN knowledge.documents d ON d.id = s.document_id"
        " WHERE (%s::text IS NULL OR d.market = %s) AND d.as_of < %s ORDER BY s.distance, d.id",
        (np.asarray(query, dtype=np.float32), k * 4 if market else k, before, kind, market, market, before),
    ).fetchall()
    return [StoredDocument(*r) for r in rows][:k]


def embedding_backlog(conn: psycopg.Connection) -> int:
    """Documents with no chunk yet (what document_embeddings has left to embed); all of them before the chunk
    table exists."""
    if not has_chunks(conn):
        return int(one_row(conn.execute("SELECT count(*) FROM knowledge.documents"))[0])
    return int(
        one_row(
            conn.execute(
                "SELECT count(*) FROM knowledge.documents d"
                " WHERE NOT EXISTS (SELECT 1 FROM knowledge.chunks c WHERE c.document_id = d.id)"
            )
        )[0]
    )


def documents_by_kind(conn: psycopg.Connection) -> list[tuple[str, int, int]]:
    """Per document kind: how many documents, and how many of them are embedded (have chunks)."""
    return conn.execute(
        "SELECT d.kind, count(*),"
        " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM knowledge.chunks c WHERE c.document_id = d.id))"
        " FROM knowledge.documents d GROUP BY d.kind ORDER BY d.kind"
    ).fetchall()

"""The knowledge schema: knowledge.documents and knowledge.chunks in PostgreSQL + pgvector, upserts by content
hash, embeddings by model version, and the point-in-time search (the SQL function ``knowledge.search``, which
Python calls too), with the reads of the marts and analytics that documents are built from.

The chunk table's ``vector(n)`` takes its dimension from the embedding model. Switching to a model of
another dimension empties the chunk table (every embedding belongs to the old model) and retypes the column
in one transaction; the next embedding run re-embeds every document.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from fks_pipelines.lib.db.connect import advisory_xact_lock, one_row
from fks_pipelines.lib.errors import DatabaseError
from fks_pipelines.lib.rag.documents import Document

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200  # 64 leaves some clusters unreachable on clustered data (recall 0 for a few queries)
DEFAULT_EF_SEARCH = 200  # recall@10 0.99 unfiltered, 1.0 with a 10% filter, on 200k clustered vectors (benchmarks)
MAX_K = 1000  # knowledge.search raises hnsw.ef_search to k, and pgvector caps ef_search at 1000

_SEARCH_FUNCTION = """
CREATE OR REPLACE FUNCTION knowledge.search(
    query vector,
    k int DEFAULT 10,
    as_of timestamptz DEFAULT now(),
    symbols text[] DEFAULT NULL,
    kinds text[] DEFAULT NULL,
    ef_search int DEFAULT {ef_search}
) RETURNS TABLE (
    document_id text, kind text, market text, symbol text, document_as_of timestamptz, distance double precision,
    chunk_index int, chunk text, text text, metadata jsonb
)
LANGUAGE plpgsql STABLE
SET hnsw.iterative_scan = 'relaxed_order'  -- keep scanning the index until k rows pass the filters
SET hnsw.ef_search = '{ef_search}'          -- restored when the function returns
AS $fn$
#variable_conflict use_column
BEGIN
    IF query IS NULL OR k IS NULL OR k < 1 THEN
        RAISE EXCEPTION 'knowledge.search needs a query vector and k >= 1';
    END IF;
    PERFORM set_config('hnsw.ef_search', greatest(search.ef_search, search.k)::text, true);
    RETURN QUERY
    WITH nearest AS MATERIALIZED (
        SELECT c.document_id, c.chunk_index, c.embedding <=> search.query AS distance
        FROM knowledge.chunks c
        WHERE c.as_of <= coalesce(search.as_of, now())
          AND (search.symbols IS NULL OR c.symbol = ANY (search.symbols))
          AND (search.kinds IS NULL OR c.kind = ANY (search.kinds))
        ORDER BY c.embedding <=> search.query
        LIMIT search.k * 4   -- several chunks of one document may come first; one per document is kept
    ), best AS (
        SELECT DISTINCT ON (n.document_id) n.document_id, n.chunk_index, n.distance
        FROM nearest n ORDER BY n.document_id, n.distance
    )
    SELECT d.id, d.kind, d.market, d.symbol, d.as_of, b.distance, b.chunk_index, c.text, d.text, d.metadata
    FROM best b
    JOIN knowledge.documents d ON d.id = b.document_id
    JOIN knowledge.chunks c ON c.document_id = b.document_id AND c.chunk_index = b.chunk_index
    ORDER BY b.distance, d.id
    LIMIT search.k;
END
$fn$;
COMMENT ON FUNCTION knowledge.search(vector, int, timestamptz, text[], text[], int) IS
  'Nearest documents to a query embedding (cosine) among those whose as_of <= the given time;'
  ' optional symbol and kind filters.';

CREATE OR REPLACE FUNCTION knowledge.similar_to(
    document_key text, k int DEFAULT 10, as_of timestamptz DEFAULT now(),
    symbols text[] DEFAULT NULL, kinds text[] DEFAULT NULL
) RETURNS TABLE (
    document_id text, kind text, market text, symbol text, document_as_of timestamptz, distance double precision,
    chunk_index int, chunk text, text text, metadata jsonb
)
LANGUAGE sql STABLE AS $fn$
    SELECT s.* FROM knowledge.documents d
    JOIN knowledge.chunks c ON c.document_id = d.id AND c.chunk_index = 0
    CROSS JOIN LATERAL knowledge.search(
        c.embedding, similar_to.k + 1, similar_to.as_of, similar_to.symbols, similar_to.kinds
    ) s
    WHERE d.key = similar_to.document_key AND s.document_id <> d.id
    ORDER BY s.distance
    LIMIT similar_to.k
$fn$;
COMMENT ON FUNCTION knowledge.similar_to(text, int, timestamptz, text[], text[]) IS
  'Documents like the one with this key (its first chunk''s embedding as the query),'
  ' point-in-time like knowledge.search.';

GRANT EXECUTE ON FUNCTION knowledge.search(vector, int, timestamptz, text[], text[], int) TO analyst;
GRANT EXECUTE ON FUNCTION knowledge.similar_to(text, int, timestamptz, text[], text[]) TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA knowledge TO analyst;
"""


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
    HNSW index and the search functions. Returns what it did: 'created', 'retyped' or 'unchanged'."""
    require_pgvector(conn)
    with conn.transaction():
        advisory_xact_lock(conn, "fks.knowledge.chunks", what="knowledge.chunks schema")
        current = chunk_dimension(conn)
        if current == dimension:
            return "unchanged"
        if current is None:
            conn.execute(
                f"""CREATE TABLE knowledge.chunks (
                    document_id   text        NOT NULL REFERENCES knowledge.documents (id) ON DELETE CASCADE,
                    chunk_index   int         NOT NULL,
                    kind          text        NOT NULL,   -- the document's, repeated so filters and the index
                    symbol        text,                   -- scan read one table
                    as_of         timestamptz NOT NULL,
                    start_char    int         NOT NULL,
                    end_char      int         NOT NULL,
                    text          text        NOT NULL,
                    model         text        NOT NULL,
                    model_version text        NOT NULL,
                    embedding     vector({int(dimension)}) NOT NULL,
                    embedded_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (document_id, chunk_index)
                )"""
            )
            conn.execute(
                "COMMENT ON TABLE knowledge.chunks IS"
                " 'Token-aware chunks of knowledge.documents with their embeddings (one model at a time).'"
            )
            conn.execute("CREATE INDEX chunks_model ON knowledge.chunks (model, model_version)")
            conn.execute("CREATE INDEX chunks_as_of ON knowledge.chunks (as_of)")
            action = "created"
        else:
            conn.execute("DROP INDEX IF EXISTS knowledge.chunks_embedding_hnsw")
            conn.execute("TRUNCATE knowledge.chunks")
            conn.execute(f"ALTER TABLE knowledge.chunks ALTER COLUMN embedding TYPE vector({int(dimension)})")
            action = "retyped"
        conn.execute(
            "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw"
            " ON knowledge.chunks USING hnsw (embedding vector_cosine_ops)"
            f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
        )
        conn.execute(_SEARCH_FUNCTION.format(ef_search=int(ef_search)))
    return action


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


def replace_documents(conn: psycopg.Connection, documents: Sequence[Document], scope: DocumentScope) -> UpsertResult:
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


# What documents are built from: the marts and the analytics layer, read for a window of UTC days. Dict rows
# keep the columns' names and order, which the documents' metadata (and so their content ids) follow.


def daily_bars_with_returns(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """One row per symbol and UTC day with start <= bucket < end, by symbol then day: the day's OHLCV (float),
    bar count and bar source (the interval of the bars it was built from) from marts.fct_ohlcv_1d, with its
    simple return and 7-/30-day volatility from
    marts.fct_returns (None where the returns mart has no row)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT d.market, d.symbol, d.bucket, d.open::float8 AS open, d.high::float8 AS high, d.low::float8 AS low,"
            " d.close::float8 AS close, d.volume::float8 AS volume, d.bar_count, d.bar_source, r.simple_return,"
            " r.volatility_7d,"
            " r.volatility_30d"
            " FROM marts.fct_ohlcv_1d d LEFT JOIN marts.fct_returns r USING (market, symbol, bucket)"
            " WHERE d.market = %s AND d.symbol = ANY(%s) AND d.bucket >= %s AND d.bucket < %s"
            " ORDER BY d.symbol, d.bucket",
            (market, list(symbols), start, end),
        ).fetchall()


def regimes_by_day(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], start: datetime, end: datetime
) -> dict[tuple[str, datetime], dict[str, Any]]:
    """{(symbol, bucket): {"regime", "next_day_probabilities"}} from analytics.market_regimes, start <= bucket < end."""
    rows = conn.execute(
        "SELECT symbol, bucket, regime, next_day_probabilities FROM analytics.market_regimes"
        " WHERE market = %s AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s",
        (market, list(symbols), start, end),
    ).fetchall()
    return {(s, b): {"regime": r, "next_day_probabilities": p} for s, b, r, p in rows}


def signals_by_day(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], start: datetime, end: datetime
) -> dict[tuple[str, datetime], dict[str, Any]]:
    """{(symbol, bucket): row} of analytics.signals with start <= bucket < end, in symbol and day order: the
    day's close, indicators and the strategy signals that fired, as of the row's ``as_of``."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT market, symbol, bucket, as_of, close, rsi_14, macd, macd_signal, macd_hist, bb_lower, bb_middle,"
            " bb_upper, sma_20, sma_50, ema_20, atr_14, strategy_signals FROM analytics.signals"
            " WHERE market = %s AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s ORDER BY symbol, bucket",
            (market, list(symbols), start, end),
        ).fetchall()
    return {(r["symbol"], r["bucket"]): r for r in rows}


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

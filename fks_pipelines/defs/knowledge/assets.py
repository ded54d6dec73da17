"""Documents from the marts and analytics (daily partitions), the record's documents (trades, positions, past
recommendations), and their embeddings in pgvector."""

from datetime import UTC, datetime

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, asset

from fks_pipelines.defs.knowledge.metadata import documents_per_day
from fks_pipelines.defs.shared import (
    GPU_OP_TAGS,
    GPU_POOL,
    MARKET_STATE,
    OWNERS,
    EmbeddingModelResource,
    MarketDataResource,
    PostgresResource,
    daily_partitions,
    one_run_at_a_time,
    table_metadata,
)
from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.rag.build import build_documents
from fks_pipelines.lib.rag.documents import KINDS, RECORD_KINDS
from fks_pipelines.lib.rag.index import embed_pending
from fks_pipelines.lib.rag.record import build_record_documents


@asset(
    key_prefix="knowledge",
    group_name="knowledge",
    deps=MARKET_STATE,
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"postgres"},
    owners=OWNERS,
    description=(
        "The day's knowledge as text: a market summary per symbol (move, range, volatility, regime, indicators, "
        "jumps and gaps), the strategy signals that fired, and the strategy choices decided that day. "
        "Each document's id is its content hash; as_of is when the information existed. Writes knowledge.documents."
    ),
)
@one_run_at_a_time
def documents(
    context: AssetExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> MaterializeResult:
    window = context.partition_time_window
    with database.connection() as conn:
        docs = build_documents(
            conn, market_data.market, market_data.symbols, market_data.interval, window.start, window.end
        )
        scope = knowledge.DocumentScope(
            kinds=KINDS, market=market_data.market, symbols=market_data.symbols, after=window.start, until=window.end
        )
        result = knowledge.replace_documents(conn, docs, scope)
        catalog = table_metadata(conn, "knowledge.documents")
    context.log.info(f"{len(docs)} documents: {result}")
    for key, metadata in documents_per_day(docs, window.start, window.end).items():
        context.add_asset_metadata(metadata, partition_key=key)
    del catalog["dagster/row_count"]  # each partition's, above
    return MaterializeResult(
        metadata={
            **catalog,
            "run_documents": len(docs),
            "run_inserted": result.inserted,
            "run_replaced": result.replaced,
            "run_unchanged": result.unchanged,
            "run_deleted": result.deleted,
        }
    )


@asset(
    key_prefix="knowledge",
    group_name="knowledge",
    deps=[AssetKey(["recommendations", "daily"])],
    op_tags=GPU_OP_TAGS,
    pool=GPU_POOL,
    kinds={"postgres", "pgvector"},
    owners=OWNERS,
    description=(
        "The record as text, each document once its outcome is known: every trade of the market's accounts (as of "
        "its execution), every closed position with its P&L and how it ended (as of its closing trade; open ones "
        "have no outcome yet) and every past recommendation with the symbol's 1- and 7-day returns and any stop "
        "fill (as of its decision time + 7 days, when the 7-day close is known). Rebuilt whole on each run "
        "(unchanged documents keep their ids and embeddings), and the new ones embedded at once, as "
        "knowledge/document_embeddings does (it cannot wait for that asset: the recommendation it follows reads its "
        "embeddings). Writes knowledge.documents (kinds trade, position, recommendation) and knowledge.chunks."
    ),
)
@one_run_at_a_time
def record_documents(
    context: AssetExecutionContext,
    database: PostgresResource,
    market_data: MarketDataResource,
    embedding_model: EmbeddingModelResource,
) -> MaterializeResult:
    until = datetime.now(UTC)
    with database.connection() as conn:
        docs = build_record_documents(conn, market_data.market, until, market_data.symbols)
        scope = knowledge.DocumentScope(
            kinds=RECORD_KINDS, market=market_data.market, symbols=market_data.symbols, until=until
        )
        result = knowledge.replace_documents(conn, docs, scope)
        embedded = embed_pending(conn, embedding_model.get()).documents if knowledge.embedding_backlog(conn) else 0
        catalog = table_metadata(conn, "knowledge.documents", row_count=len(docs))  # the record's rows
    context.log.info(f"{len(docs)} record documents known by {until:%Y-%m-%d %H:%M} UTC: {result}")
    return MaterializeResult(
        metadata={
            **catalog,
            "documents": len(docs),
            **{f"documents_{kind}": sum(1 for d in docs if d.kind == kind) for kind in RECORD_KINDS},
            "known_by": until.isoformat(),
            "inserted": result.inserted,
            "replaced": result.replaced,
            "unchanged": result.unchanged,
            "deleted": result.deleted,
            "embedded": embedded,
        }
    )


@asset(
    key_prefix="knowledge",
    group_name="knowledge",
    deps=[documents],
    op_tags=GPU_OP_TAGS,
    pool=GPU_POOL,
    kinds={"pytorch", "pgvector"},
    owners=OWNERS,
    description=(
        "Embeddings of every document not yet embedded by the current model version (sentence-transformers, "
        "token-aware chunks; a model change re-embeds what it must). Writes knowledge.chunks (HNSW cosine index); "
        "search with knowledge.search(...)."
    ),
)
@one_run_at_a_time
def document_embeddings(
    context: AssetExecutionContext, database: PostgresResource, embedding_model: EmbeddingModelResource
) -> MaterializeResult:
    embedder = embedding_model.get()
    context.log.info(f"embedding with {embedder.model} ({embedder.version}) on {embedder.device_used}")
    last = {"logged": 0}

    def progress(done: int, total: int) -> None:
        if done - last["logged"] >= 2000 or done == total:
            context.log.info(f"embedded {done:,}/{total:,} documents")
            last["logged"] = done

    with database.connection() as conn:
        stats = embed_pending(conn, embedder, progress=progress)
        documents_indexed, chunks_indexed = knowledge.indexed_totals(conn)
        catalog = table_metadata(conn, "knowledge.chunks")
    return MaterializeResult(
        metadata={
            **catalog,
            "model": embedder.model,
            "model_version": embedder.version,
            "device": embedder.device_used,
            "dimension": embedder.dimension,
            "documents_embedded": stats.documents,
            "chunks_written": stats.chunks,
            "documents_per_second": round(stats.documents_per_second, 1),
            "documents_indexed": documents_indexed,
            "chunks_indexed": chunks_indexed,
            "chunk_table": stats.table,  # what ensure_chunk_table did: created, retyped or unchanged
        }
    )

"""Documents from the marts and analytics (daily partitions), and their embeddings in pgvector."""

from datetime import UTC, timedelta

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, MetadataValue, asset

from fks_pipelines.defs.knowledge.resources import EmbeddingModelResource
from fks_pipelines.defs.shared import (
    GPU_OP_TAGS,
    GPU_POOL,
    OWNERS,
    MarketDataResource,
    PostgresResource,
    daily_partitions,
    one_run_at_a_time,
    table_metadata,
)
from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.rag.build import build_documents
from fks_pipelines.lib.rag.documents import KINDS, Document
from fks_pipelines.lib.rag.index import embed_pending

# What a day's state of the market is read from (documents and recommendations both build on it).
MARKET_STATE = [
    AssetKey(["marts", "fct_ohlcv_1d"]),
    AssetKey(["marts", "fct_returns"]),
    AssetKey(["analytics", "signals"]),
    AssetKey(["analytics", "market_regimes"]),
    AssetKey(["analytics", "strategy_choices"]),
]


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
    # Each partition's metadata describes the documents of its day: those whose information became known in
    # (day, day + 1], as build_documents defines them. What the write did is the run's, labelled run_*.
    by_day: dict[str, list[Document]] = {}
    for d in docs:
        by_day.setdefault(f"{d.as_of.astimezone(UTC) - timedelta(microseconds=1):%Y-%m-%d}", []).append(d)
    day = window.start
    while day < window.end:
        key = f"{day:%Y-%m-%d}"
        day_docs = by_day.get(key, [])
        by_kind = {kind: sum(1 for d in day_docs if d.kind == kind) for kind in KINDS}
        preview = max((d for d in day_docs if d.kind == "market_summary"), key=lambda d: d.as_of, default=None)
        context.add_asset_metadata(
            {
                "dagster/row_count": len(day_docs),
                "documents": len(day_docs),
                **{f"documents_{kind}": n for kind, n in by_kind.items()},
                "preview": MetadataValue.md(f"**{preview.key}**\n\n{preview.text}")
                if preview
                else MetadataValue.text("no market summary"),
            },
            partition_key=key,
        )
        day += timedelta(days=1)
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

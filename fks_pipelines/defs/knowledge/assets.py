"""Documents from the marts and analytics (daily partitions), and their embeddings in pgvector."""

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, MetadataValue, asset

from fks_pipelines.defs.knowledge.resources import EmbeddingModelResource
from fks_pipelines.defs.shared import (
    GPU_OP_TAGS,
    GPU_POOL,
    OWNERS,
    MarketDataResource,
    PostgresResource,
    daily_partitions,
)
from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.rag.documents import KINDS, Document, market_summary, signal_events, strategy_summary
from fks_pipelines.lib.rag.index import embed_pending
from fks_pipelines.lib.sources.frame import bars_per_day

# What a day's state of the market is read from (documents and recommendations both build on it).
MARKET_STATE = [
    AssetKey(["marts", "fct_ohlcv_1d"]),
    AssetKey(["marts", "fct_returns"]),
    AssetKey(["analytics", "signals"]),
    AssetKey(["analytics", "market_regimes"]),
    AssetKey(["analytics", "strategy_choices"]),
]


def build_documents(conn, market: str, symbols: list[str], interval: str, start, end) -> list[Document]:
    """Every document whose information became known in (start, end]: the market summary of each day in
    [start, end), the strategy signals that fired on it, and the walk-forward choices of runs whose data
    ended in the window."""
    regimes = knowledge.regimes_by_day(conn, market, symbols, start, end)
    signals = knowledge.signals_by_day(conn, market, symbols, start, end)
    docs: list[Document] = []
    for row in knowledge.daily_bars_with_returns(conn, market, symbols, start, end):
        day = row | {"expected_bars": bars_per_day(interval)}
        state = signals.get((day["symbol"], day["bucket"]))
        indicators = (
            {k: v for k, v in state.items() if k not in ("market", "symbol", "bucket", "as_of", "strategy_signals")}
            if state
            else None
        )
        docs.append(market_summary(day, regimes.get((day["symbol"], day["bucket"])), indicators))
    for state in signals.values():
        docs.extend(signal_events(state))
    choices = knowledge.strategy_choices_with_data_ending(conn, market, symbols, start, end)
    docs.extend(strategy_summary(choice) for choice in choices)
    return docs


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
        "jumps and gaps), the strategy signals that fired, and walk-forward choices whose data ended that day. "
        "Each document's id is its content hash; as_of is when the information existed. Writes knowledge.documents."
    ),
)
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
    by_kind: dict[str, int] = {}
    for d in docs:
        by_kind[d.kind] = by_kind.get(d.kind, 0) + 1
    context.log.info(f"{len(docs)} documents: {result}")
    preview = max((d for d in docs if d.kind == "market_summary"), key=lambda d: d.as_of, default=None)
    return MaterializeResult(
        metadata={
            "documents": len(docs),
            "by_kind": MetadataValue.json(by_kind),
            "inserted": result.inserted,
            "replaced": result.replaced,
            "unchanged": result.unchanged,
            "deleted": result.deleted,
            **({"preview": MetadataValue.md(f"**{preview.key}**\n\n{preview.text}")} if preview else {}),
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
    return MaterializeResult(
        metadata={
            "model": embedder.model,
            "model_version": embedder.version,
            "device": embedder.device_used,
            "dimension": embedder.dimension,
            "documents_embedded": stats.documents,
            "chunks_written": stats.chunks,
            "documents_per_second": round(stats.documents_per_second, 1),
            "documents_indexed": documents_indexed,
            "chunks_indexed": chunks_indexed,
            "chunk_table": stats.table,
        }
    )

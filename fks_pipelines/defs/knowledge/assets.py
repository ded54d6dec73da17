"""Documents from the marts and analytics (daily partitions), and their embeddings in pgvector."""


from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, MetadataValue, asset

from fks_pipelines.defs.knowledge.resources import EmbeddingModelResource
from fks_pipelines.defs.shared import GPU_POOL, GPU_TAGS, MarketDataResource, PostgresResource, daily_partitions
from fks_pipelines.lib.db import knowledge as store
from fks_pipelines.lib.rag.documents import KINDS, Document, market_summary, signal_events, strategy_summary
from fks_pipelines.lib.rag.index import embed_pending
from fks_pipelines.lib.sources.klines import bars_per_day

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
    days = conn.execute(
        "SELECT d.market, d.symbol, d.bucket, d.open::float8, d.high::float8, d.low::float8, d.close::float8,"
        " d.volume::float8, d.bar_count, r.simple_return, r.volatility_7d, r.volatility_30d"
        " FROM marts.fct_ohlcv_1d d LEFT JOIN marts.fct_returns r USING (market, symbol, bucket)"
        " WHERE d.market = %s AND d.symbol = ANY(%s) AND d.bucket >= %s AND d.bucket < %s ORDER BY d.symbol, d.bucket",
        (market, symbols, start, end),
    ).fetchall()
    regimes = {
        (s, b): {"regime": r, "next_day_probabilities": p}
        for s, b, r, p in conn.execute(
            "SELECT symbol, bucket, regime, next_day_probabilities FROM analytics.market_regimes"
            " WHERE market = %s AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s",
            (market, symbols, start, end),
        ).fetchall()
    }
    signal_rows = conn.execute(
        "SELECT market, symbol, bucket, as_of, close, rsi_14, macd, macd_signal, macd_hist, bb_lower, bb_middle,"
        " bb_upper, sma_20, sma_50, ema_20, atr_14, strategy_signals FROM analytics.signals"
        " WHERE market = %s AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s ORDER BY symbol, bucket",
        (market, symbols, start, end),
    ).fetchall()
    columns = ["market", "symbol", "bucket", "as_of", "close", "rsi_14", "macd", "macd_signal", "macd_hist", "bb_lower",
               "bb_middle", "bb_upper", "sma_20", "sma_50", "ema_20", "atr_14", "strategy_signals"]  # fmt: skip
    signals = {(r[1], r[2]): dict(zip(columns, r, strict=True)) for r in signal_rows}
    docs: list[Document] = []
    names = ["market", "symbol", "bucket", "open", "high", "low", "close", "volume", "bar_count", "simple_return",
             "volatility_7d", "volatility_30d"]  # fmt: skip
    for row in days:
        day = dict(zip(names, row, strict=True)) | {"expected_bars": bars_per_day(interval)}
        state = signals.get((day["symbol"], day["bucket"]))
        indicators = {k: v for k, v in state.items() if k not in ("market", "symbol", "bucket", "as_of", "strategy_signals")} if state else None
        docs.append(market_summary(day, regimes.get((day["symbol"], day["bucket"])), indicators))
    for state in signals.values():
        docs.extend(signal_events(state))
    choices = conn.execute(
        "SELECT c.run_id, c.market, c.symbol, c.strategy, c.params, c.objective, c.oos_windows, c.oos_total_return,"
        " c.oos_sharpe, c.oos_max_drawdown, c.oos_trades, c.buy_and_hold_return, c.decided_at, r.data_start, r.data_end"
        " FROM analytics.strategy_choices c JOIN analytics.backtest_runs r USING (run_id)"
        " WHERE c.market = %s AND c.symbol = ANY(%s) AND r.data_end > %s AND r.data_end <= %s ORDER BY c.run_id, c.symbol",
        (market, symbols, start, end),
    )
    names = [d.name for d in choices.description]
    docs.extend(strategy_summary(dict(zip(names, row, strict=True))) for row in choices.fetchall())
    return docs


@asset(
    key_prefix="knowledge",
    group_name="knowledge",
    deps=MARKET_STATE,
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"postgres"},
    description=(
        "The day's knowledge as text: a market summary per symbol (move, range, volatility, regime, indicators, "
        "jumps and gaps), the strategy signals that fired, and walk-forward choices whose data ended that day. "
        "Each document's id is its content hash; as_of is when the information existed. Writes knowledge.documents."
    ),
)
def documents(context: AssetExecutionContext, database: PostgresResource, market_data: MarketDataResource) -> MaterializeResult:
    window = context.partition_time_window
    with database.connection() as conn:
        docs = build_documents(conn, market_data.market, market_data.symbols, market_data.interval, window.start, window.end)
        result = store.replace_documents(
            conn, docs,
            scope_sql="kind = ANY(%s) AND market = %s AND symbol = ANY(%s) AND as_of > %s AND as_of <= %s",
            scope_params=[list(KINDS), market_data.market, market_data.symbols, window.start, window.end],
        )  # fmt: skip
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
    op_tags=GPU_TAGS,
    pool=GPU_POOL,
    kinds={"pytorch", "pgvector"},
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
        totals = conn.execute("SELECT count(DISTINCT document_id), count(*) FROM knowledge.chunks").fetchone()
    return MaterializeResult(
        metadata={
            "model": embedder.model,
            "model_version": embedder.version,
            "device": embedder.device_used,
            "dimension": embedder.dimension,
            "documents_embedded": stats.documents,
            "chunks_written": stats.chunks,
            "documents_per_second": round(stats.documents_per_second, 1),
            "documents_indexed": totals[0],
            "chunks_indexed": totals[1],
            "chunk_table": stats.table,
        }
    )

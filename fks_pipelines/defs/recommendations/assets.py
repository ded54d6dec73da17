"""The daily recommendation per account (LLM or rules, sized deterministically), its track record, the
monthly profit split, and the Discord post."""


import json
from datetime import date, datetime, timedelta, timezone

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from fks_pipelines.defs.knowledge.assets import MARKET_STATE
from fks_pipelines.defs.knowledge.resources import EmbeddingModelResource
from fks_pipelines.defs.recommendations.resources import LLMResource
from fks_pipelines.defs.shared import (
    GPU_POOL,
    GPU_TAGS,
    DiscordResource,
    MarketDataResource,
    PostgresResource,
    daily_partitions,
)
from fks_pipelines.lib.db import recommendations as store
from fks_pipelines.lib.db.knowledge import search
from fks_pipelines.lib.db.portfolio import account_states, equity
from fks_pipelines.lib.llm.generate import generate
from fks_pipelines.lib.llm.schema import RetrievedDocument
from fks_pipelines.lib.notify import post_to_discord, recommendation_message
from fks_pipelines.lib.portfolio.sizing import profit_split

DAILY_KEY = AssetKey(["recommendations", "daily"])


def retriever(conn, embedding_model: EmbeddingModelResource, k: int = 4):
    """Top-k documents per symbol known at the decision time (none before anything is embedded)."""
    if conn.execute("SELECT to_regclass('knowledge.chunks')").fetchone()[0] is None:
        return lambda symbol, at: []
    embedder = embedding_model.get()

    def retrieve(symbol: str, at: datetime) -> list[RetrievedDocument]:
        query = embedder.encode([f"{symbol}: latest market summary, strategy signals and walk-forward results"])[0]
        return [RetrievedDocument(h.document_id, h.kind, h.symbol, h.as_of, h.text) for h in search(conn, query, k, as_of=at, symbols=[symbol])]

    return retrieve


@asset(
    key=DAILY_KEY,
    group_name="recommendations",
    deps=[*MARKET_STATE, AssetKey(["knowledge", "document_embeddings"])],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    op_tags=GPU_TAGS,
    pool=GPU_POOL,
    kinds={"openai", "postgres"},
    check_specs=[
        AssetCheckSpec("llm_answered", asset=DAILY_KEY, description="Warns when a configured LLM failed and the rules engine answered instead.")
    ],
    description=(
        "Per account and symbol, what to do at the end of each day and why: the LLM (vLLM, structured output) or, "
        "without one, the rules engine, from point-in-time inputs (marts, signals, walk-forward choice, regime, "
        "retrieved documents, the account's state); sized by the account's tier, volatility and cash, every clamp "
        "recorded. Writes recommendations.generations and recommendations.daily; posts the last day to Discord."
    ),
)
def daily_recommendations(
    context: AssetExecutionContext,
    database: PostgresResource,
    market_data: MarketDataResource,
    embedding_model: EmbeddingModelResource,
    llm: LLMResource,
    discord: DiscordResource,
):
    window = context.partition_time_window
    client = llm.client()
    days = [(window.start + timedelta(days=i)).date() for i in range((window.end - window.start).days)]
    failures, generations, last_rows = [], [], []
    with database.connection() as conn:
        if not account_states(conn, datetime.now(timezone.utc)):
            context.log.warning("no accounts in portfolio.accounts: import one with `fks portfolio import FILE`")
        retrieve = retriever(conn, embedding_model)
        for day in days:
            account_contexts, _ = store.contexts(conn, day, market_data.symbols, market_data.market, retrieve)
            for account_context in account_contexts:
                generation = generate(account_context, client)
                store.store_generation(conn, day, generation, account_context.decided_at)
                generations.append((day, generation))
                if generation.llm_error:
                    failures.append(f"{day} {generation.account}: {generation.llm_error}")
                    context.log.warning(f"LLM failed for {generation.account} on {day}; the rules engine answered: {generation.llm_error}")
        last_rows = latest_rows(conn, days[-1]) if days else []
    if last_rows and discord.webhook_url:
        problem = post_to_discord(discord.webhook_url, recommendation_message(str(days[-1]), last_rows))
        context.log.info("posted to Discord" if problem is None else f"Discord post failed (the recommendation stands): {problem}")
    elif last_rows:
        context.log.info("DISCORD_WEBHOOK_URL not set: no notification")
    table = ["| account | symbol | action | target | now | price | confidence | generator | clamps |", "|---|---|---|---|---|---|---|---|---|"]
    for r in last_rows:
        table.append(f"| {r['account']} | {r['symbol']} | {r['action']} | {r['target_allocation']:.1%} | {r['current_allocation']:.1%} |"
                     f" {r['reference_price']:,.2f} | {r['confidence']:.0%} | {r['generator']} | {len(r['clamps'])} |")  # fmt: skip
    generators = sorted({g.generator for _, g in generations})
    return MaterializeResult(
        metadata={
            "days": len(days),
            "accounts": len({g.account for _, g in generations}),
            "generators": ", ".join(generators) or "-",
            "llm": client.model if client else "none configured (rules engine)",
            "llm_failures": len(failures),
            "latest": MetadataValue.md("\n".join(table)) if last_rows else MetadataValue.text("no recommendation"),
            "latest_json": MetadataValue.json(json.loads(json.dumps(last_rows, default=str))),
        },
        check_results=[
            AssetCheckResult(
                check_name="llm_answered",
                passed=not failures,
                severity=AssetCheckSeverity.WARN,
                metadata={"failures": MetadataValue.json(failures[:20]), "llm_configured": client is not None},
            )
        ],
    )


def latest_rows(conn, day: date) -> list[dict]:
    cursor = conn.execute(
        "SELECT account, symbol, generator, action, target_allocation, proposed_allocation, current_allocation, reference_price,"
        " entry, stop_loss, take_profit, horizon_days, confidence, rationale, evidence, clamps"
        " FROM recommendations.daily WHERE decision_date = %s ORDER BY account, symbol",
        (day,),
    )
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@asset(
    key_prefix="recommendations",
    group_name="recommendations",
    deps=[DAILY_KEY],
    kinds={"postgres"},
    description=(
        "Every past recommendation scored against what happened next: 1- and 7-day returns after the decision, "
        "hits (buy and it rose, sell and it fell, hold and it stayed within a sigma), paper P&L. Writes "
        "recommendations.track_record."
    ),
)
def track_record(context: AssetExecutionContext, database: PostgresResource) -> MaterializeResult:
    with database.connection() as conn:
        scored = store.score_track_record(conn)
        summary = conn.execute(
            "SELECT account, generator, count(*), avg(hit_1d::int), avg(hit_7d::int), sum(paper_pnl_1d), sum(paper_pnl_7d)"
            " FROM recommendations.track_record GROUP BY account, generator ORDER BY account, generator"
        ).fetchall()
    fmt = lambda v, pattern: "-" if v is None else format(v, pattern)  # noqa: E731
    table = ["| account | generator | scored | hit rate 1d | hit rate 7d | paper P&L 1d | paper P&L 7d |", "|---|---|---|---|---|---|---|"]
    table += [f"| {a} | {g} | {n} | {fmt(h1, '.0%')} | {fmt(h7, '.0%')} | {fmt(p1, ',.2f')} | {fmt(p7, ',.2f')} |" for a, g, n, h1, h7, p1, p7 in summary]
    return MaterializeResult(metadata={"scored": scored, "by_account_and_generator": MetadataValue.md("\n".join(table))})


@asset(
    key_prefix="portfolio",
    group_name="recommendations",
    deps=[AssetKey(["marts", "fct_ohlcv_1d"])],
    kinds={"postgres"},
    description=(
        "The monthly 50/50 profit split: for each trading account (personal, prop firm), half of last complete "
        "month's profit goes to the long-term account, half stays to trade. Writes portfolio.profit_splits with "
        "the transfer to make (it does not move money)."
    ),
)
def profit_splits(context: AssetExecutionContext, database: PostgresResource, market_data: MarketDataResource) -> MaterializeResult:
    with database.connection() as conn:
        latest = conn.execute("SELECT max(bucket) FROM marts.fct_ohlcv_1d WHERE market = %s", (market_data.market,)).fetchone()[0]
        if latest is None:
            return MaterializeResult(metadata={"transfers": 0, "note": "no market data yet"})
        month_end = datetime(latest.year, latest.month, 1, tzinfo=timezone.utc)  # the last complete month ends here
        month_start = (month_end - timedelta(days=1)).replace(day=1)
        if (latest + timedelta(days=1)).month != latest.month:  # the latest day closes its month
            month_start, month_end = month_end, (latest + timedelta(days=1))
        start_states = {s.account: s for s in account_states(conn, month_start)}
        end_states = account_states(conn, month_end)
        long_term = next((s.account for s in end_states if s.kind == "long_term"), None)
        rows = []
        for end in end_states:
            if end.kind == "long_term":
                continue
            start = start_states.get(end.account)
            equity_start = equity(conn, start, month_start) if start else 0.0
            equity_end = equity(conn, end, month_end)
            net = end.net_deposits - (start.net_deposits if start else 0.0)
            profit, transfer = profit_split(equity_start, equity_end, net)
            rows.append((month_start.date(), end.account, long_term, equity_start, equity_end, net, profit, transfer))
        with conn.transaction():
            conn.execute("DELETE FROM portfolio.profit_splits WHERE month = %s", (month_start.date(),))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO portfolio.profit_splits (month, account, to_account, equity_start, equity_end, net_deposits, profit, transfer)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
    return MaterializeResult(
        metadata={
            "month": f"{month_start:%Y-%m}",
            "transfers": MetadataValue.json({r[1]: {"profit": round(r[6], 2), "transfer_to_long_term": round(r[7], 2), "to": r[2]} for r in rows}),
        }
    )


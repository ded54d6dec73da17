"""The daily recommendation per account (LLM or rules, sized deterministically), its track record, and the
Discord post."""

import json
from datetime import UTC, datetime, timedelta

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
    OWNERS,
    DiscordResource,
    MarketDataResource,
    PostgresResource,
    daily_partitions,
)
from fks_pipelines.lib.db import recommendations
from fks_pipelines.lib.db.portfolio import account_states
from fks_pipelines.lib.notify import post_to_discord, recommendation_message
from fks_pipelines.lib.recommend.generate import generate
from fks_pipelines.lib.recommend.retrieval import retriever
from fks_pipelines.settings import settings

DAILY_KEY = AssetKey(["recommendations", "daily"])


@asset(
    key=DAILY_KEY,
    group_name="recommendations",
    deps=[*MARKET_STATE, AssetKey(["knowledge", "document_embeddings"])],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    op_tags=GPU_TAGS,
    pool=GPU_POOL,
    # openai: the LLM speaks the OpenAI API; only when one is configured (else the rules engine decides).
    kinds={"openai", "postgres"} if settings().llm_base_url else {"python", "postgres"},
    owners=OWNERS,
    check_specs=[
        AssetCheckSpec(
            "llm_answered",
            asset=DAILY_KEY,
            description="Warns when a configured LLM failed and the rules engine answered instead.",
        )
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
        if not account_states(conn, datetime.now(UTC)):
            context.log.warning("no accounts in portfolio.accounts: import one with `fks portfolio import FILE`")
        retrieve = retriever(conn, embedding_model.get)
        for day in days:
            account_contexts = recommendations.contexts(conn, day, market_data.symbols, market_data.market, retrieve)
            day_generations = [(generate(c, client), c.decided_at) for c in account_contexts]
            recommendations.store_day(conn, day, day_generations)  # every account of the day, or none
            for generation, _ in day_generations:
                generations.append((day, generation))
                if generation.llm_error:
                    failures.append(f"{day} {generation.account}: {generation.llm_error}")
                    context.log.warning(
                        f"LLM failed for {generation.account} on {day}; the rules engine answered: {generation.llm_error}"
                    )
        last_rows = recommendations.latest_rows(conn, days[-1]) if days else []
    if last_rows and discord.webhook_url:
        problem = post_to_discord(discord.webhook_url, recommendation_message(str(days[-1]), last_rows))
        context.log.info(
            "posted to Discord" if problem is None else f"Discord post failed (the recommendation stands): {problem}"
        )
    elif last_rows:
        context.log.info("DISCORD_WEBHOOK_URL not set: no notification")
    table = [
        "| account | symbol | action | target | now | price | confidence | generator | clamps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in last_rows:
        table.append(
            f"| {r['account']} | {r['symbol']} | {r['action']} | {r['target_allocation']:.1%} | {r['current_allocation']:.1%} |"
            f" {r['reference_price']:,.2f} | {r['confidence']:.0%} | {r['generator']} | {len(r['clamps'])} |"
        )
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


@asset(
    key_prefix="recommendations",
    group_name="recommendations",
    deps=[DAILY_KEY],
    kinds={"postgres"},
    owners=OWNERS,
    description=(
        "Every past recommendation scored against what happened next: 1- and 7-day returns after the decision, "
        "hits (buy and it rose, sell and it fell, hold and it stayed within a sigma), paper P&L. Writes "
        "recommendations.track_record."
    ),
)
def track_record(context: AssetExecutionContext, database: PostgresResource) -> MaterializeResult:
    with database.connection() as conn:
        scored = recommendations.score_track_record(conn)
        summary = recommendations.track_record_summary(conn)
    fmt = lambda v, pattern: "-" if v is None else format(v, pattern)  # noqa: E731
    table = [
        "| account | generator | scored | hit rate 1d | hit rate 7d | paper P&L 1d | paper P&L 7d |",
        "|---|---|---|---|---|---|---|",
    ]
    table += [
        f"| {a} | {g} | {n} | {fmt(h1, '.0%')} | {fmt(h7, '.0%')} | {fmt(p1, ',.2f')} | {fmt(p7, ',.2f')} |"
        for a, g, n, h1, h7, p1, p7 in summary
    ]
    return MaterializeResult(
        metadata={"scored": scored, "by_account_and_generator": MetadataValue.md("\n".join(table))}
    )

"""The daily recommendation per account (LLM or rules, sized deterministically), its track record, and the
Discord post."""

import time
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from fks_pipelines.defs.recommendations.metadata import (
    day_metadata,
    evaluation_metadata,
    explanation_metadata,
    run_metadata,
    track_record_metadata,
)
from fks_pipelines.defs.recommendations.resources import LLMResource, RecommenderResource
from fks_pipelines.defs.shared import (
    GPU_OP_TAGS,
    GPU_POOL,
    MARKET_STATE,
    OWNERS,
    EmbeddingModelResource,
    MarketDataResource,
    NotifierResource,
    PostgresResource,
    daily_partitions,
    one_run_at_a_time,
    table_metadata,
)
from fks_pipelines.lib.db import recommendations
from fks_pipelines.lib.db.portfolio import account_states
from fks_pipelines.lib.notify import Attachment, recommendation_message
from fks_pipelines.lib.recommend.daily import DailyRun, recommend_days
from fks_pipelines.lib.recommend.evaluation import evaluation_rows
from fks_pipelines.lib.recommend.explain import explain_day
from fks_pipelines.lib.recommend.report import account_curves, evaluation_picture
from fks_pipelines.lib.recommend.retrieval import retriever

DAILY_KEY = AssetKey(["recommendations", "daily"])


def build_daily_recommendations(in_process_llm: bool = False, llm_base_url: str | None = None) -> AssetsDefinition:
    """The daily recommendation asset as the LLM settings shape it (``recommendations.build_defs`` passes
    FKS_LLM_ENGINE and FKS_LLM_BASE_URL). It needs a GPU only when it runs vLLM inside its own process
    (``in_process_llm``); over HTTP the GPU is the vLLM server's, and the step stays on a CPU worker."""
    return asset(
        key=DAILY_KEY,
        group_name="recommendations",
        deps=[*MARKET_STATE, AssetKey(["knowledge", "document_embeddings"])],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        op_tags=GPU_OP_TAGS if in_process_llm else None,
        pool=GPU_POOL if in_process_llm else None,
        # openai: the LLM speaks the OpenAI API; only when one is configured (else the rules engine decides).
        kinds={"openai", "postgres"} if llm_base_url else {"python", "postgres"},
        owners=OWNERS,
        check_specs=[
            AssetCheckSpec(
                "llm_answered",
                asset=DAILY_KEY,
                description="Warns when a configured LLM failed and the rules engine answered instead.",
            )
        ],
        description=(
            "Per account and symbol, what to do at the end of each day and why: the LLM (vLLM, structured output) or,"
            " without one, the rules engine, from point-in-time inputs (marts, signals, walk-forward choice, regime, "
            "retrieved documents, the account's state); sized by the account's tier, volatility and cash, every clamp"
            " recorded. Writes recommendations.generations and recommendations.daily; fills paper accounts' "
            "recommendations at the next day's open (portfolio.trades, ids paper-*); with an LLM, also the rules "
            "engine's shadow recommendation per paper account and its own ledger (recommendations.shadow_daily, "
            "shadow_fills); posts the last day to Discord."
        ),
    )(one_run_at_a_time(_daily_recommendations))


def _daily_recommendations(
    context: AssetExecutionContext,
    database: PostgresResource,
    market_data: MarketDataResource,
    embedding_model: EmbeddingModelResource,
    llm: LLMResource,
    recommender: RecommenderResource,
    notifier: NotifierResource,
):
    window = context.partition_time_window
    client = llm.client()
    days = [(window.start + timedelta(days=i)).date() for i in range((window.end - window.start).days)]
    with database.connection() as conn:
        if not account_states(conn, datetime.now(UTC)):
            context.log.warning("no accounts in portfolio.accounts: import one with `fks portfolio import FILE`")
        run = recommend_days(
            conn,
            days,
            market_data.market,
            market_data.symbols,
            client,
            retriever(conn, embedding_model.get),
            window.start,
            calibrate=recommender.feedback,
        )
        rows_by_day = {day: recommendations.latest_rows(conn, day) for day in days}  # each partition's metadata
        acts = recommendations.guard_acts(conn, since=days[-1]) if days else []  # the last day's, for the post
        started = time.perf_counter()  # the pictures' cost, shown beside them
        explanations = explain_day(conn, days[-1], market_data.market, market_data.symbols) if days else []
        pictures = explanation_metadata(explanations, time.perf_counter() - started)
        catalog = table_metadata(conn, "recommendations.daily")
    _log_run(context, run)
    last_rows = rows_by_day[days[-1]] if days else []
    if last_rows:
        message = recommendation_message(str(days[-1]), last_rows, acts)
        files = [Attachment(f"{e.account}-{n}.png", png) for e in explanations for n, png in e.pictures.items()]
        notifier.post(f"the recommendation of {days[-1]}", message, context.log, files[:10])
    # Each partition's metadata describes its own day; the run's totals are labelled run_*.
    for day in days:
        extra = pictures if day == days[-1] else {}  # the last day's decision, explained in pictures
        context.add_asset_metadata(day_metadata(run, day, rows_by_day[day]) | extra, partition_key=day.isoformat())
    del catalog["dagster/row_count"]  # each partition's, above
    return MaterializeResult(
        metadata={**catalog, **run_metadata(run, client.model if client else "none configured (rules engine)")},
        check_results=[
            AssetCheckResult(
                check_name="llm_answered",
                passed=not run.failures,
                severity=AssetCheckSeverity.WARN,
                metadata={"failures": MetadataValue.json(run.failures[:20]), "llm_configured": client is not None},
            )
        ],
    )


# As it runs without an LLM in its own process or a configured one (tests and benchmarks pass their own LLM
# resource); the code location builds it from the settings (``recommendations.build_defs``).
daily_recommendations = build_daily_recommendations()


def _log_run(context: AssetExecutionContext, run: DailyRun) -> None:
    """A warning per generation the rules engine answered because the LLM failed, and per paper ledger the run
    left incomplete (with the command that re-runs its days)."""
    for day, generation in run.generations:
        if generation.llm_error:
            context.log.warning(
                f"LLM failed for {generation.account} on {day}; the rules engine answered: {generation.llm_error}"
            )
    for hole in run.holes:
        context.log.warning(
            f"the paper ledger of {hole.account} is incomplete from {hole.first} to {hole.last}"
            f" ({len(hole.removed)} fill(s) removed: {', '.join(hole.removed) or 'none'}); the evaluation"
            f" refuses it until these days are re-run: {recommendations.rerun_command(run.holes)}"
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
@one_run_at_a_time
def track_record(context: AssetExecutionContext, database: PostgresResource) -> MaterializeResult:
    with database.connection() as conn:
        scored = recommendations.score_track_record(conn)
        summary = recommendations.track_record_summary(conn)
        catalog = table_metadata(conn, "recommendations.track_record")
    return MaterializeResult(metadata={**catalog, **track_record_metadata(scored, summary)})


@asset(
    key_prefix="recommendations",
    group_name="recommendations",
    deps=[DAILY_KEY, AssetKey(["analytics", "signals"])],
    kinds={"postgres"},
    owners=OWNERS,
    description=(
        "Whether following the recommendations helps: each paper account's ledger against cash, equal-weight "
        "buy-and-hold and the chosen strategies alone (analytics.strategy_state at full allocation), over the same "
        "window from the same equity with the same fees and slippage; when an LLM decided, the rules engine's "
        "shadow ledger (recommendations.shadow_daily) beside it. Writes recommendations.evaluation (one row "
        "per account, generator, baseline and window) and plots every equity curve. Refuses (and keeps the previous "
        "rows) while a re-run of earlier days has left a paper ledger incomplete (recommendations.ledger_holes), "
        "naming the days to re-run."
    ),
)
@one_run_at_a_time
def evaluation(
    context: AssetExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> MaterializeResult:
    rows: list[dict] = []
    plotted: list[tuple[str, dict]] = []  # (stable key suffix, row) for the Plots tab
    with database.connection() as conn:
        holes = recommendations.ledger_holes(conn, market_data.market)
        if holes:  # a ledger with holes is never scored: the previous evaluation stays
            raise Failure(
                "the paper ledger is incomplete (a re-run of earlier days removed later fills): "
                + "; ".join(f"{h.account} from {h.first} to {h.last}" for h in holes)
                + f". Re-run those days, then the evaluation: {recommendations.rerun_command(holes)}"
            )
        evaluated = account_curves(conn, market_data.market, market_data.symbols)
        for e in evaluated:
            account_rows = evaluation_rows(e.curves, e.account, e.generator)
            rows += account_rows
            suffix = f"{e.account}_{{}}_{e.generator}" if e.shadow else f"{e.account}_{{}}"
            plotted += [(suffix.format(r["baseline"]), r) for r in account_rows if r["period"] == "window"]
        # The picture before the write: a failure anywhere leaves the previous evaluation whole (all or nothing).
        png = evaluation_picture(evaluated) if evaluated else None
        recommendations.replace_evaluation(conn, sorted({e.account for e in evaluated}), rows)
        catalog = table_metadata(conn, "recommendations.evaluation")
    if not png:
        context.log.warning("no paper account with recommendations: set `mode: paper` in the portfolio YAML")
    return MaterializeResult(metadata={**catalog, **evaluation_metadata(rows, plotted, png)})

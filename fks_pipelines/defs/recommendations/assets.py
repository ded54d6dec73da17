"""The daily recommendation per account (LLM or rules, sized deterministically), its track record, and the
Discord post."""

import base64
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from fks_pipelines.defs.knowledge.assets import MARKET_STATE
from fks_pipelines.defs.knowledge.resources import EmbeddingModelResource
from fks_pipelines.defs.recommendations.resources import LLMResource
from fks_pipelines.defs.shared import (
    GPU_OP_TAGS,
    GPU_POOL,
    OWNERS,
    DiscordResource,
    MarketDataResource,
    PostgresResource,
    daily_partitions,
    one_run_at_a_time,
    table_metadata,
)
from fks_pipelines.lib.db import recommendations
from fks_pipelines.lib.db.marts import daily_opens
from fks_pipelines.lib.db.portfolio import (
    account_states,
    delete_paper_fills_after,
    paper_fill_ids_after,
    replace_paper_fills,
)
from fks_pipelines.lib.notify import post_to_discord, recommendation_message
from fks_pipelines.lib.portfolio.paper import Target, fill_time, paper_fills
from fks_pipelines.lib.recommend import inputs
from fks_pipelines.lib.recommend.evaluation import evaluation_rows
from fks_pipelines.lib.recommend.generate import Generation, generate, shadow_generation
from fks_pipelines.lib.recommend.report import account_curves, evaluation_picture
from fks_pipelines.lib.recommend.retrieval import retriever
from fks_pipelines.lib.recommend.schema import AccountContext
from fks_pipelines.settings import settings

DAILY_KEY = AssetKey(["recommendations", "daily"])
# The daily recommendation needs a GPU only when it runs vLLM inside its own process (FKS_LLM_ENGINE=in_process);
# over HTTP the GPU is the vLLM server's, and the step stays on a CPU worker.
_IN_PROCESS_LLM = settings().llm_engine == "in_process"


@asset(
    key=DAILY_KEY,
    group_name="recommendations",
    deps=[*MARKET_STATE, AssetKey(["knowledge", "document_embeddings"])],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    op_tags=GPU_OP_TAGS if _IN_PROCESS_LLM else None,
    pool=GPU_POOL if _IN_PROCESS_LLM else None,
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
        "recorded. Writes recommendations.generations and recommendations.daily; fills paper accounts' recommendations "
        "at the next day's open (portfolio.trades, ids paper-*); with an LLM, also the rules engine's shadow "
        "recommendation per paper account and its own ledger (recommendations.shadow_daily, shadow_fills); posts "
        "the last day to Discord."
    ),
)
@one_run_at_a_time
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
    paper_trades = shadow_fills = shadow_count = 0
    holes: list[recommendations.LedgerHole] = []
    removed: dict[str, set[str]] = {}
    with database.connection() as conn:
        if not account_states(conn, datetime.now(UTC)):
            context.log.warning("no accounts in portfolio.accounts: import one with `fks portfolio import FILE`")
        retrieve = retriever(conn, embedding_model.get)
        if days:  # a re-run replays the paper accounts (and their shadow ledgers) from the window's first fill on
            removed = paper_fill_ids_after(conn, market_data.market, window.start)
            delete_paper_fills_after(conn, market_data.market, window.start)
            recommendations.clear_shadows(conn, market_data.market, days[0], days[-1], keep_days=client is not None)
        for day in days:
            paper_trades += fill_paper_accounts(conn, day - timedelta(days=1), market_data.market, market_data.symbols)
            account_contexts = inputs.contexts(conn, day, market_data.symbols, market_data.market, retrieve)
            day_generations = [(generate(c, client), c.decided_at) for c in account_contexts]
            recommendations.store_day(conn, day, day_generations)  # every account of the day, or none
            if client is not None:  # the rules engine beside the LLM, on the same inputs, against its own ledger
                shadow_fills += fill_shadow_ledgers(
                    conn, day - timedelta(days=1), market_data.market, market_data.symbols
                )
                shadows = shadow_generations(conn, account_contexts)
                recommendations.store_shadow_day(conn, day, shadows)
                shadow_count += len(shadows)
            for generation, _ in day_generations:
                generations.append((day, generation))
                if generation.llm_error:
                    failures.append(f"{day} {generation.account}: {generation.llm_error}")
                    context.log.warning(
                        f"LLM failed for {generation.account} on {day}; "
                        f"the rules engine answered: {generation.llm_error}"
                    )
        if days:  # the last day's fills too, when the next day's open already exists (a past window)
            paper_trades += fill_paper_accounts(conn, days[-1], market_data.market, market_data.symbols)
            if client is not None:
                shadow_fills += fill_shadow_ledgers(conn, days[-1], market_data.market, market_data.symbols)
            # Fills of days after the window that were removed and not replayed leave a hole: recorded, so the
            # evaluation refuses the ledger until those days are re-run.
            replayed = paper_fill_ids_after(conn, market_data.market, window.start)
            removed = {a: ids - replayed.get(a, set()) for a, ids in removed.items()}
            holes = recommendations.record_ledger_holes(conn, market_data.market, days[0], days[-1], removed)
            for hole in holes:
                context.log.warning(
                    f"the paper ledger of {hole.account} is incomplete from {hole.first} to {hole.last}"
                    f" ({len(hole.removed)} fill(s) removed: {', '.join(hole.removed) or 'none'}); the evaluation"
                    f" refuses it until these days are re-run: {recommendations.rerun_command(holes)}"
                )
        last_rows = recommendations.latest_rows(conn, days[-1]) if days else []
        rows_by_day = {day: recommendations.latest_rows(conn, day) for day in days}  # each partition's metadata
        catalog = table_metadata(conn, "recommendations.daily")
    if last_rows and discord.webhook_url:
        problem = post_to_discord(discord.webhook_url, recommendation_message(str(days[-1]), last_rows))
        context.log.info(
            "posted to Discord" if problem is None else f"Discord post failed (the recommendation stands): {problem}"
        )
    elif last_rows:
        context.log.info("DISCORD_WEBHOOK_URL not set: no notification")
    # Each partition's metadata describes its own day; the run's totals are labelled run_*.
    for day in days:
        of_day = [g for d, g in generations if d == day]
        context.add_asset_metadata(
            {
                "dagster/row_count": len(rows_by_day[day]),
                "accounts": len({g.account for g in of_day}),
                "llm_failures": sum(1 for g in of_day if g.llm_error),
                "recommendations": _recommendations_table(rows_by_day[day]),
            },
            partition_key=day.isoformat(),
        )
    del catalog["dagster/row_count"]  # each partition's, above
    generators = sorted({g.generator for _, g in generations})
    return MaterializeResult(
        metadata={
            **catalog,
            "run_days": len(days),
            "run_accounts": len({g.account for _, g in generations}),
            "run_generators": ", ".join(generators) or "-",
            "llm": client.model if client else "none configured (rules engine)",
            "run_llm_failures": len(failures),
            "run_paper_fills": paper_trades,
            "run_shadow_generations": shadow_count,  # the rules engine beside the LLM (0 without an LLM)
            "run_shadow_fills": shadow_fills,
            # Paper fills this run removed and did not replay, and the ledgers left incomplete (with what to re-run).
            "run_removed_fills": MetadataValue.json({a: sorted(ids) for a, ids in removed.items() if ids}),
            "ledger_holes": MetadataValue.json(
                [{"account": h.account, "from": str(h.first), "to": str(h.last), "removed": h.removed} for h in holes]
            ),
            "rerun": recommendations.rerun_command(holes) if holes else "-",
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


RECOMMENDATION_COLUMNS = (
    TableColumn("account", "string"),
    TableColumn("symbol", "string"),
    TableColumn("action", "string", description="buy, sell or hold"),
    TableColumn("target_allocation", "float", description="share of the account's equity after sizing"),
    TableColumn("current_allocation", "float"),
    TableColumn("reference_price", "float", description="the decision day's close"),
    TableColumn("stop_loss", "float"),
    TableColumn("take_profit", "float"),
    TableColumn("confidence", "float"),
    TableColumn("generator", "string", description="llm or rules"),
    TableColumn("clamps", "int", description="sizing limits applied"),
)


def _recommendations_table(rows: list[dict]) -> MetadataValue:
    """A day's sized recommendations (recommendations.daily), every row, as a table the UI renders."""
    records = [
        TableRecord(
            {
                **{c.name: r[c.name] for c in RECOMMENDATION_COLUMNS if c.type == "string"},
                **{
                    c.name: None if r[c.name] is None else float(r[c.name])
                    for c in RECOMMENDATION_COLUMNS
                    if c.type == "float"
                },
                "clamps": len(r["clamps"]),
            }
        )
        for r in rows
    ]
    return MetadataValue.table(records, schema=TableSchema(columns=list(RECOMMENDATION_COLUMNS)))


def fill_paper_accounts(conn, day: date, market: str, symbols: list[str]) -> int:
    """Fill every paper account's recommendation for ``day`` at the next day's open (nothing when that open
    does not exist yet, or ``day`` has no recommendation); returns the fills written."""
    at = recommendations.decision_time(day)
    opens = daily_opens(conn, market, symbols, at)
    rows = recommendations.latest_rows(conn, day)
    if not opens or not rows:
        return 0
    n = 0
    for state in account_states(conn, at):
        if state.mode != "paper" or state.market != market:
            continue
        targets = [
            Target(r["symbol"], r["action"], r["target_allocation"]) for r in rows if r["account"] == state.account
        ]
        fills = paper_fills(
            day, targets, cash=state.cash, positions=state.positions, opens=opens, fill_at=fill_time(day)
        )
        replace_paper_fills(conn, state.account, day, fills)
        n += len(fills)
    return n


def shadow_generations(conn, account_contexts: list[AccountContext]) -> list[tuple[Generation, datetime]]:
    """The rules engine's recommendation for each paper account's context (the inputs the LLM just read), sized
    for the account's shadow ledger as it stands at the decision time."""
    out = []
    states = {s.account: s for s in account_states(conn, account_contexts[0].decided_at)} if account_contexts else {}
    for c in account_contexts:
        if states[c.account].mode != "paper":
            continue
        held = recommendations.shadow_state(conn, states[c.account], c.decided_at, recommendations.SHADOW_GENERATOR)
        out.append((shadow_generation(c, held.cash, held.positions), c.decided_at))
    return out


def fill_shadow_ledgers(conn, day: date, market: str, symbols: list[str]) -> int:
    """Fill every paper account's shadow recommendation for ``day`` in its shadow ledger, by the paper rules
    (next day's open, fees, slippage): nothing when that open does not exist yet. Returns the fills written."""
    at = recommendations.decision_time(day)
    opens = daily_opens(conn, market, symbols, at)
    if not opens:
        return 0
    n, generator = 0, recommendations.SHADOW_GENERATOR
    for state in account_states(conn, at):
        if state.mode != "paper" or state.market != market:
            continue
        targets = [Target(*t) for t in recommendations.shadow_targets(conn, day, state.account, generator)]
        if not targets:
            continue
        held = recommendations.shadow_state(conn, state, at, generator)
        fills = paper_fills(day, targets, cash=held.cash, positions=held.positions, opens=opens, fill_at=fill_time(day))
        recommendations.replace_shadow_fills(conn, state.account, generator, day, fills)
        n += len(fills)
    return n


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
    columns = ("account", "generator", "scored", "hit_rate_1d", "hit_rate_7d", "paper_pnl_1d", "paper_pnl_7d")
    rows = [dict(zip(columns, row, strict=True)) for row in summary]
    metadata: dict[str, Any] = {
        **catalog,
        "scored": scored,
        "by_account_and_generator": _typed_table(rows, columns),
    }
    for r in rows:  # numbers the Plots tab charts, one stable key per account and generator
        for name in ("hit_rate_1d", "hit_rate_7d"):
            value = r[name]
            metadata[f"{name}_{r['account']}_{r['generator']}"] = MetadataValue.float(
                float("nan") if value is None else float(value)
            )
    return MaterializeResult(metadata=metadata)


def _typed_table(rows: list[dict], columns: tuple[str, ...]) -> MetadataValue:
    """Rows as a table the UI renders, each column typed by its values: int, float (numbers, decimals), bool,
    or string (text, dates)."""

    def kind(name: str) -> str:
        values = [r.get(name) for r in rows if r.get(name) is not None]
        if values and all(isinstance(v, bool) for v in values):
            return "bool"
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "int"
        if values and all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in values):
            return "float"
        return "string"

    types = {name: kind(name) for name in columns}
    cast = {"int": int, "float": float, "bool": bool, "string": str}
    records = [
        TableRecord({name: None if r.get(name) is None else cast[types[name]](r[name]) for name in columns})
        for r in rows
    ]
    return MetadataValue.table(records, schema=TableSchema(columns=[TableColumn(n, types[n]) for n in columns]))


def _picture_markdown(png: bytes) -> str:
    return f"![equity curves](data:image/png;base64,{base64.b64encode(png).decode()})"


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
        png = _picture_markdown(evaluation_picture(evaluated)) if evaluated else None
        recommendations.replace_evaluation(conn, sorted({e.account for e in evaluated}), rows)
        catalog = table_metadata(conn, "recommendations.evaluation")
    metadata: dict[str, Any] = {
        **catalog,
        "evaluated_rows": len(rows),
        "evaluation": _typed_table(rows, recommendations.EVALUATION_COLUMNS),
    }
    # Numbers the Plots tab charts, one stable key per account and baseline (the rules engine's ledger beside an
    # LLM's adds its generator, so it never overwrites the followed one).
    for suffix, r in plotted:
        for name in ("total_return", "sharpe"):
            value = r.get(name)
            metadata[f"{name}_{suffix}"] = MetadataValue.float(
                float(value) if isinstance(value, (int, float, Decimal)) else float("nan")
            )
    if png:
        metadata["equity_curves"] = MetadataValue.md(png)
    else:
        context.log.warning("no paper account with recommendations: set `mode: paper` in the portfolio YAML")
    return MaterializeResult(metadata=metadata)

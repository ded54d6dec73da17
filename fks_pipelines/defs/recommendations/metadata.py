"""What the recommendation assets show in the catalog: each day's sized recommendations, the run's totals, the
track record and the evaluation as typed tables, and numbers the Plots tab charts."""

from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from fks_pipelines.lib.db import recommendations
from fks_pipelines.lib.recommend.daily import DailyRun

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
TRACK_RECORD_COLUMNS = (
    "account",
    "generator",
    "scored",
    "hit_rate_1d",
    "hit_rate_7d",
    "paper_pnl_1d",
    "paper_pnl_7d",
)


def recommendations_table(rows: list[dict]) -> MetadataValue:
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


def day_metadata(run: DailyRun, day: date, rows: list[dict]) -> dict[str, Any]:
    """One partition's metadata: the recommendations of its own day (``rows``, recommendations.daily)."""
    of_day = [g for d, g in run.generations if d == day]
    return {
        "dagster/row_count": len(rows),
        "accounts": len({g.account for g in of_day}),
        "llm_failures": sum(1 for g in of_day if g.llm_error),
        "recommendations": recommendations_table(rows),
    }


def run_metadata(run: DailyRun, llm: str) -> dict[str, Any]:
    """The run's totals over its days, labelled run_* (each partition's own are in :func:`day_metadata`)."""
    holes = run.holes
    return {
        "run_days": len(run.days),
        "run_accounts": len({g.account for _, g in run.generations}),
        "run_generators": ", ".join(sorted({g.generator for _, g in run.generations})) or "-",
        "llm": llm,
        "run_llm_failures": len(run.failures),
        "run_paper_fills": run.paper_fills,
        "run_shadow_generations": run.shadow_generations,  # the rules engine beside the LLM (0 without an LLM)
        "run_shadow_fills": run.shadow_fills,
        # Paper fills this run removed and did not replay, and the ledgers left incomplete (with what to re-run).
        "run_removed_fills": MetadataValue.json({a: sorted(ids) for a, ids in run.removed.items() if ids}),
        "ledger_holes": MetadataValue.json(
            [{"account": h.account, "from": str(h.first), "to": str(h.last), "removed": h.removed} for h in holes]
        ),
        "rerun": recommendations.rerun_command(holes) if holes else "-",
    }


def typed_table(rows: list[dict], columns: tuple[str, ...]) -> MetadataValue:
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


def track_record_metadata(scored: int, summary: list[tuple]) -> dict[str, Any]:
    """The scored count, the hit rates and paper P&L per account and generator as a table, and each hit rate as a
    number the Plots tab charts (one stable key per account and generator)."""
    rows = [dict(zip(TRACK_RECORD_COLUMNS, row, strict=True)) for row in summary]
    metadata: dict[str, Any] = {"scored": scored, "by_account_and_generator": typed_table(rows, TRACK_RECORD_COLUMNS)}
    for r in rows:
        for name in ("hit_rate_1d", "hit_rate_7d"):
            value = r[name]
            metadata[f"{name}_{r['account']}_{r['generator']}"] = MetadataValue.float(
                float("nan") if value is None else float(value)
            )
    return metadata


def evaluation_metadata(rows: list[dict], plotted: list[tuple[str, dict]], png: bytes | None) -> dict[str, Any]:
    """The evaluation's rows as a typed table, its total return and Sharpe ratio per account and baseline as
    numbers the Plots tab charts (``plotted``: stable key suffix and row), and the equity curves' picture."""
    metadata: dict[str, Any] = {
        "evaluated_rows": len(rows),
        "evaluation": typed_table(rows, recommendations.EVALUATION_COLUMNS),
    }
    # One stable key per account and baseline (the rules engine's ledger beside an LLM's adds its generator, so it
    # never overwrites the followed one).
    for suffix, r in plotted:
        for name in ("total_return", "sharpe"):
            value = r.get(name)
            metadata[f"{name}_{suffix}"] = MetadataValue.float(
                float(value) if isinstance(value, (int, float, Decimal)) else float("nan")
            )
    if png:
        metadata["equity_curves"] = MetadataValue.md(
            f"![equity curves](data:image/png;base64,{base64.b64encode(png).decode()})"
        )
    return metadata


def explanation_metadata(explanations: list, seconds: float) -> dict[str, Any]:
    """Per account, why its last recommendation is what it is: the text and its pictures (where it stands, the
    size path, the regime's next-day odds, the profit split), shown on the asset page (lib/recommend/explain.py)."""
    metadata: dict[str, Any] = {"pictures_seconds": MetadataValue.float(round(seconds, 3))}
    for e in explanations:
        images = "\n\n".join(
            f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
            for name, png in e.pictures.items()
        )
        metadata[f"why_{e.account}"] = MetadataValue.md(f"```\n{e.text}\n```\n\n{images}")
    return metadata

"""What the raw asset shows in the catalog for each day it loaded: its rows, bars per symbol, gaps and a preview."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from fks_pipelines.lib.db.raw import SymbolSummary


def day_metadata(rows_loaded: int, rows_replaced: int, summaries: list[SymbolSummary], frame: pl.DataFrame) -> dict:
    """One day's materialization metadata: what that partition holds."""
    firsts = [s.first_bar for s in summaries if s.first_bar]
    lasts = [s.last_bar for s in summaries if s.last_bar]
    gaps = [f"{s.symbol} {a:%Y-%m-%d %H:%M} .. {b:%H:%M}" for s in summaries for a, b in s.missing_ranges]
    return {
        "dagster/row_count": rows_loaded,
        "rows_replaced": rows_replaced,
        "rows_per_symbol": MetadataValue.table(
            records=[
                TableRecord({"symbol": s.symbol, "rows": s.rows, "missing_bars": s.missing_bars}) for s in summaries
            ],
            schema=TableSchema(
                columns=[
                    TableColumn("symbol", "text"),
                    TableColumn("rows", "int"),
                    TableColumn("missing_bars", "int"),
                ]
            ),
        ),
        "missing_bars": sum(s.missing_bars for s in summaries),
        "first_bar": min(firsts).isoformat() if firsts else "none",
        "last_bar": max(lasts).isoformat() if lasts else "none",
        "gaps": MetadataValue.md("\n".join(f"- {g}" for g in gaps[:20]) or "none"),
        "preview": preview_table(frame) if frame.height else MetadataValue.text("no rows"),
    }


def preview_table(frame: pl.DataFrame, rows: int = 5) -> MetadataValue:
    """The first rows as a table the UI renders (values as text: exact decimals and timestamps)."""
    head = frame.head(rows)
    return MetadataValue.table(
        records=[TableRecord({k: str(v) for k, v in row.items()}) for row in head.iter_rows(named=True)],
        schema=TableSchema(columns=[TableColumn(c, "text") for c in head.columns]),
    )

"""What the knowledge assets show in the catalog: each day's documents, counted by kind, with a preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import MetadataValue

from fks_pipelines.lib.rag.documents import KINDS, Document


def documents_per_day(docs: list[Document], start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    """Each partition's metadata (keyed by its day, every day in [start, end)): the documents of its day, those
    whose information became known in (day, day + 1], as build_documents defines them."""
    by_day: dict[str, list[Document]] = {}
    for d in docs:
        by_day.setdefault(f"{d.as_of.astimezone(UTC) - timedelta(microseconds=1):%Y-%m-%d}", []).append(d)
    out = {}
    day = start
    while day < end:
        key = f"{day:%Y-%m-%d}"
        day_docs = by_day.get(key, [])
        by_kind = {kind: sum(1 for d in day_docs if d.kind == kind) for kind in KINDS}
        preview = max((d for d in day_docs if d.kind == "market_summary"), key=lambda d: d.as_of, default=None)
        out[key] = {
            "dagster/row_count": len(day_docs),
            "documents": len(day_docs),
            **{f"documents_{kind}": n for kind, n in by_kind.items()},
            "preview": MetadataValue.md(f"**{preview.key}**\n\n{preview.text}")
            if preview
            else MetadataValue.text("no market summary"),
        }
        day += timedelta(days=1)
    return out

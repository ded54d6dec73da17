"""What a decision reads from the knowledge layer, all known at the decision time.

Recency first, fetched by key and time (never by similarity): the symbol's own market summary for the decision
day, the day's fired signals, the latest strategy choice's record and the chosen strategy's position at the latest
close (analytics.strategy_state). Then analogs: the k past market days (any symbol of the market) whose summaries are
nearest to today's (vector similarity), strictly before the decision, each with the forward returns that were
known at the decision time: a day's h-day outcome is known only once day + h has closed, so a 7-day outcome of a
day 3 days back is reported as not yet known.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import psycopg

from fks_pipelines.lib.db import analytics, knowledge, marts
from fks_pipelines.lib.rag.embedder import Embedder
from fks_pipelines.lib.recommend.inputs import Retriever
from fks_pipelines.lib.recommend.schema import RetrievedDocument

ANALOG_HORIZONS = (1, 3, 7)  # days after an analog day whose returns a decision may see (when known)
DAY = timedelta(days=1)


def _document(d: knowledge.StoredDocument, role: str, outcomes: dict[str, float | None] | None = None):
    return RetrievedDocument(d.id, d.kind, d.symbol, d.as_of, d.text, role=role, outcomes=outcomes)


def _day_of(summary: knowledge.StoredDocument) -> datetime:
    """The UTC day a market summary is about (its as_of is that day's end)."""
    return summary.as_of - DAY


def analog_outcomes(
    conn: psycopg.Connection, analogs: list[knowledge.StoredDocument], at: datetime
) -> list[dict[str, float | None]]:
    """Each analog day's forward returns over ANALOG_HORIZONS, None where the outcome was not known at ``at``."""
    out: list[dict[str, float | None]] = []
    by_market: dict[str, dict] = {}
    for market in {a.market or "" for a in analogs}:
        days = [(a.symbol or "", _day_of(a)) for a in analogs if (a.market or "") == market]
        by_market[market] = marts.forward_returns(conn, market, days, ANALOG_HORIZONS, known_by=at)
    for a in analogs:
        known = by_market[a.market or ""].get((a.symbol or "", _day_of(a)), {})
        out.append({f"{h}d": known.get(h) for h in ANALOG_HORIZONS})
    return out


def retriever(
    conn: psycopg.Connection, embedder: Callable[[], Embedder], analogs: int = 3, market: str | None = None
) -> Retriever:
    """``retrieve(symbol, at)``: the decision's documents (see the module docstring), in the order today's summary,
    the day's signals, the strategy's record and state, then the analogs, nearest first. The embedding model is
    loaded only if today's summary is not embedded yet (then it is encoded here, the same way)."""
    model: list[Embedder] = []

    def embedding_of(summary: knowledge.StoredDocument) -> np.ndarray | None:
        vector = knowledge.document_embedding(conn, summary.id)
        if vector is None and knowledge.has_chunks(conn):
            if not model:
                model.append(embedder())
            vector = model[0].encode([summary.text])[0]
        return vector

    def retrieve(symbol: str, at: datetime) -> list[RetrievedDocument]:
        out: list[RetrievedDocument] = []
        today = knowledge.documents_between(conn, symbol, ["market_summary"], at - DAY, at)
        summary = next((d for d in today if market is None or d.market == market), None)
        if summary is not None:
            out.append(_document(summary, "today"))
        day_start = summary.as_of - DAY if summary is not None else at - DAY
        out += [
            _document(d, "signal")
            for d in knowledge.documents_between(conn, symbol, ["signal_event"], day_start, at)
            if market is None or d.market == market
        ]
        choice = knowledge.latest_document(conn, symbol, "strategy_summary", at)
        if choice is not None:
            out.append(_document(choice, "strategy"))
        state_market = market or (summary.market if summary is not None else None)
        if state_market is not None:
            for row in analytics.latest_strategy_state(conn, state_market, symbol, at):
                as_of = datetime.fromisoformat(str(row["as_of"]))  # the last bar the state used
                key = f"strategy_state/{state_market}/{symbol}/{row.get('strategy', '')}/{as_of:%Y-%m-%d}"
                text = f"Strategy state of {symbol} ({state_market}) at the close: " + json.dumps(
                    {k: v for k, v in row.items() if k not in ("market", "symbol")}, sort_keys=True, default=str
                )
                out.append(RetrievedDocument(key, "strategy_state", symbol, as_of, text, role="state"))
        if summary is not None and analogs > 0:
            vector = embedding_of(summary)
            if vector is not None:
                similar = knowledge.nearest_before(
                    conn, vector, analogs, "market_summary", before=summary.as_of, market=summary.market
                )
                for d, outcomes in zip(similar, analog_outcomes(conn, similar, at), strict=True):
                    out.append(_document(d, "analog", outcomes))
        return out

    return retrieve

"""Which documents a window of days yields, assembled from the layers' stores: the marts (daily bars and returns),
the analytics layer (signals, regimes, the effective strategy choices) and the pure builders in documents.py.

Point-in-time: a document of day D is known at the end of D (its ``as_of``); a strategy summary at its decision
time. Every read goes through the owning schema's store, so the choices are the one effective ranking
(``analytics.EFFECTIVE_CHOICES``) every other reader sees.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from fks_pipelines.lib.db import analytics, marts
from fks_pipelines.lib.klines import bars_per_day
from fks_pipelines.lib.rag.documents import Document, market_summary, signal_events, strategy_summary


def build_documents(
    conn: psycopg.Connection, market: str, symbols: list[str], interval: str, start: datetime, end: datetime
) -> list[Document]:
    """Every document whose information became known in (start, end]: the market summary of each day in
    [start, end), the strategy signals that fired on it, and the weekly strategy choices decided in the window."""
    regimes = analytics.regimes_by_day(conn, market, symbols, start, end)
    signals = analytics.signals_by_day(conn, market, symbols, start, end)
    docs: list[Document] = []
    for row in marts.daily_bars_with_returns(conn, market, symbols, start, end):
        # A day's bars are complete at 1440 one-minute or 24 hourly bars, whichever it was built from (bar_source,
        # not the configured interval); bar_source itself stays out of the document (its content id).
        source = row.pop("bar_source", None) or interval
        day = row | {"expected_bars": bars_per_day(source)}
        state = signals.get((day["symbol"], day["bucket"]))
        indicators = (
            {k: v for k, v in state.items() if k not in ("market", "symbol", "bucket", "as_of", "strategy_signals")}
            if state
            else None
        )
        docs.append(market_summary(day, regimes.get((day["symbol"], day["bucket"])), indicators))
    for state in signals.values():
        docs.extend(signal_events(state))
    # One summary per decision made in the window (keyed by its decision time, so re-runs replace, not add).
    docs.extend(strategy_summary(choice) for choice in analytics.choices_decided(conn, market, symbols, start, end))
    return docs

"""One UTC day from a source into ``raw.binance_klines``: the fetch (a source's) then the one load path (the raw
store's ``replace_klines``), every attempt logged in ``raw.ingest_log``, a failed fetch included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import psycopg

from fks_pipelines.lib.db.raw import LoadResult, log_failed_fetch, replace_klines
from fks_pipelines.lib.errors import FksError
from fks_pipelines.lib.klines import LoadScope, check_closed, empty_klines
from fks_pipelines.lib.sources import DayBatch, KlineSource


def load_day(
    conn: psycopg.Connection,
    source: KlineSource,
    market: str,
    interval: str,
    symbols: Sequence[str],
    day: date,
    *,
    force: bool = False,
    partition_key: str | None = None,
    run_id: str | None = None,
) -> tuple[LoadResult, DayBatch]:
    """Fetch one UTC day from ``source`` and replace it (``replace_klines``). A day that has not ended is
    rejected before anything is fetched; a fetch that fails is logged (``rejected`` for a bad answer, ``failed``
    for an unavailable source) before the error goes on, so every attempt is in ``raw.ingest_log``."""
    scope = LoadScope.for_day(market, interval, symbols, day.isoformat())
    try:
        check_closed(empty_klines(), scope, now=datetime.now(UTC))
        batch = source.fetch_day(market, symbols, interval, day)
    except FksError as exc:
        log_failed_fetch(conn, scope, source.name, exc, partition_key=partition_key, run_id=run_id)
        raise
    result = replace_klines(
        conn,
        batch.frame,
        scope,
        source=source.name,
        detail=batch.detail,
        checksum=batch.checksum,
        partition_key=partition_key,
        run_id=run_id,
        absent=batch.absent,
        force=force,
    )
    return result, batch

"""The one load path into ``raw.binance_klines``: validate, then replace a scope in a single transaction.

Every writer (the Dagster asset, ``fks ingest ...``, the benchmark) goes through ``replace_klines``:
- the frame is validated and must lie inside its LoadScope, before anything touches the database;
- one transaction deletes the scope and ``COPY``s the new rows in, then records the load in
  ``raw.ingest_log``; a crash or kill before COMMIT leaves the previous rows exactly as they were;
- re-loading the same scope with the same rows yields exactly the same table (idempotent);
- loads of the same market and interval are serialised by an advisory lock, so two runs of one partition
  cannot interleave;
- only history: a scope that has not ended (UTC) or a bar that has not closed is rejected;
- no silent shrinking: a load that offers a symbol fewer bars than the scope already holds is refused (nothing
  deleted), unless the source proves the missing bars do not exist (``ProvenAbsent``) or the caller forces it.
A rejected, refused or failed load is still logged (status ``rejected``/``refused``/``failed``) in its own
transaction, and so is a day whose fetch failed (``log_failed_fetch``, called by ``lib/sources/load.py``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import psycopg
from psycopg.copy import QueuedLibpqWriter

from fks_pipelines.lib.db.connect import advisory_xact_lock, one_row
from fks_pipelines.lib.errors import BadInputError, DatabaseError, FksError, RefusedLoadError
from fks_pipelines.lib.klines import (
    KLINE_COLUMNS,
    KLINE_SCHEMA,
    LoadScope,
    ProvenAbsent,
    check_closed,
    check_within_scope,
    empty_klines,
    validate_klines,
)

TABLE = "raw.binance_klines"
COPY_COLUMNS = (*KLINE_COLUMNS, "source")
COPY_SQL = f"COPY {TABLE} ({', '.join(COPY_COLUMNS)}) FROM STDIN (FORMAT csv)"
CHUNK_ROWS = 50_000


KNOWN_GAPS = "raw.known_gaps"


def _record_known_gaps(conn: psycopg.Connection, scope: LoadScope, absent: Sequence[ProvenAbsent], source: str) -> None:
    """Replace the proofs of absent bars recorded for ``scope`` with ``absent`` (clipped to the scope), inside the
    caller's transaction: the known gaps of a day are those its latest load relied on."""
    conn.execute(
        f"DELETE FROM {KNOWN_GAPS} WHERE market = %s AND interval = %s AND symbol = ANY(%s)"
        " AND range_start >= %s AND range_start < %s",
        (scope.market, scope.interval, list(scope.symbols), scope.start, scope.end),
    )
    rows = [
        (scope.market, a.symbol, scope.interval, max(a.start, scope.start), min(a.end, scope.end), a.evidence, source)
        for a in absent
        if a.symbol in scope.symbols and a.start < scope.end and a.end > scope.start
    ]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {KNOWN_GAPS} (market, symbol, interval, range_start, range_end, evidence, source)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


@dataclass(frozen=True)
class LoadResult:
    scope: LoadScope
    rows_deleted: int
    rows_loaded: int
    duration_s: float
    log_id: int


def frame_to_csv(frame: pl.DataFrame, source: str) -> bytes:
    """CSV bytes in COPY_COLUMNS order; timestamps written explicitly as UTC."""
    buf = io.BytesIO()
    frame.with_columns(pl.lit(source).alias("source")).select(COPY_COLUMNS).write_csv(
        buf, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f+00"
    )
    return buf.getvalue()


def _serialized_chunks(frame: pl.DataFrame, source: str, chunk_rows: int) -> Iterator[tuple[int, bytes]]:
    """CSV chunks of ``frame``, the next one serialised in a worker thread while the current one is sent, so
    polars' formatting overlaps the server's parsing (polars releases the GIL)."""
    offsets = list(range(0, frame.height, chunk_rows))
    if not offsets:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fks-csv") as pool:
        pending = pool.submit(frame_to_csv, frame.slice(offsets[0], chunk_rows), source)
        for i, offset in enumerate(offsets):
            chunk = pending.result()
            if i + 1 < len(offsets):
                pending = pool.submit(frame_to_csv, frame.slice(offsets[i + 1], chunk_rows), source)
            yield min(offset + chunk_rows, frame.height), chunk


def _log(
    conn: psycopg.Connection,
    *,
    status: str,
    scope: LoadScope,
    source: str,
    detail: str | None,
    partition_key: str | None,
    run_id: str | None,
    rows_deleted: int | None = None,
    rows_loaded: int | None = None,
    checksum: str | None = None,
    duration_s: float | None = None,
    error: str | None = None,
) -> int:
    cursor = conn.execute(
        """
        INSERT INTO raw.ingest_log (status, partition_key, market, interval, symbols, range_start, range_end,
                                    source, detail, rows_deleted, rows_loaded, checksum, duration_ms, error, run_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id
        """,
        (
            status,
            partition_key,
            scope.market,
            scope.interval,
            list(scope.symbols),
            scope.start,
            scope.end,
            source,
            detail,
            rows_deleted,
            rows_loaded,
            checksum,
            None if duration_s is None else duration_s * 1000,
            error,
            run_id,
        ),
    )
    return int(one_row(cursor)[0])


def replace_klines(
    conn: psycopg.Connection,
    frame: pl.DataFrame,
    scope: LoadScope,
    *,
    source: str,
    detail: str | None = None,
    checksum: str | None = None,
    partition_key: str | None = None,
    run_id: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    absent: Sequence[ProvenAbsent] = (),
    force: bool = False,
) -> LoadResult:
    """Replace ``scope`` in ``raw.binance_klines`` with ``frame``, atomically. ``on_progress(done, total)``
    is called after each chunk is sent (the CLI's progress bar, and the crash test's cue). ``absent`` is the
    source's proof of bars that do not exist; ``force`` replaces even with fewer bars and no such proof."""
    where = detail or f"{source} load of {scope.describe()}"
    started = time.perf_counter()

    def log(**fields: Any) -> int:  # every attempt is recorded, whatever its outcome
        return _log(
            conn, scope=scope, source=source, detail=detail, partition_key=partition_key, run_id=run_id, **fields
        )

    try:
        validate_klines(frame, where=where)
        check_within_scope(frame, scope, where=where)
        check_closed(frame, scope, now=datetime.now(UTC))
    except BadInputError as exc:
        with conn.transaction():
            log(status="rejected", checksum=checksum, error=str(exc))
        raise
    try:
        with conn.transaction():
            advisory_xact_lock(
                conn, TABLE, f"{scope.market}/{scope.interval}", what=f"{scope.market}/{scope.interval} load"
            )
            shrinking = [] if force else _shrinking(conn, frame, scope, absent)
            if shrinking:
                raise RefusedLoadError(
                    f"refused to replace {scope.market} {scope.interval} {_span(scope)}: {'; '.join(shrinking)}; "
                    "the source does not prove the missing bars do not exist "
                    "(to replace anyway: --force, or force: true in run config)"
                )
            deleted = conn.execute(
                f"DELETE FROM {TABLE} WHERE market = %s AND interval = %s AND symbol = ANY(%s)"
                " AND open_time >= %s AND open_time < %s",
                (scope.market, scope.interval, list(scope.symbols), scope.start, scope.end),
            ).rowcount
            total = frame.height
            with conn.cursor() as cur, cur.copy(COPY_SQL, writer=QueuedLibpqWriter(cur)) as copy:
                for done, chunk in _serialized_chunks(frame, source, chunk_rows):
                    copy.write(chunk)
                    if on_progress:
                        on_progress(done, total)
            _record_known_gaps(conn, scope, absent, source)
            duration = time.perf_counter() - started
            log_id = log(
                status="loaded", rows_deleted=deleted, rows_loaded=total, checksum=checksum, duration_s=duration
            )
    except RefusedLoadError as exc:
        with conn.transaction():
            log(status="refused", checksum=checksum, error=str(exc))
        raise
    except (psycopg.Error, DatabaseError) as exc:  # DatabaseError: the scope's lock was not free in time
        if not conn.closed and not conn.broken:
            with conn.transaction():
                log(status="failed", checksum=checksum, error=str(exc).strip()[:2000])
        raise
    return LoadResult(scope=scope, rows_deleted=deleted, rows_loaded=total, duration_s=duration, log_id=log_id)


STAGE = "fks_klines_stage"


def replace_days(
    conn: psycopg.Connection,
    frame: pl.DataFrame,
    scope: LoadScope,
    *,
    source: str,
    detail: str,
    checksum: str | None = None,
    force: bool = False,
    absent: Sequence[ProvenAbsent] = (),
    on_day: Callable[[int, int], None] | None = None,
) -> list[LoadResult]:
    """Replace ``scope`` (whole UTC days: a month's archive, a freqtrade file's years) one transaction per UTC day,
    with the same promises as ``replace_klines`` for each day, and for the whole: the frame is validated, and
    every day checked for shrinking, before the first day is written, so a bad or refused input writes nothing.

    Fast for thousands of days: the rows go to the server once (one COPY into a session temp table), then each
    day is a ``DELETE`` plus ``INSERT ... SELECT`` from it in its own transaction. ``on_day(done, total)`` is
    called after each day commits."""
    days = _whole_days(scope)

    def log(day_scope: LoadScope, **fields: Any) -> int:
        return _log(conn, scope=day_scope, source=source, detail=detail, partition_key=None, run_id=None, **fields)

    try:
        validate_klines(frame, where=detail)
        check_within_scope(frame, scope, where=detail)
        check_closed(frame, scope, now=datetime.now(UTC))
    except BadInputError as exc:
        with conn.transaction():
            log(scope, status="rejected", checksum=checksum, error=str(exc))
        raise
    by_day = _rows_per_day_and_symbol(frame)
    if not force:
        shrinking = _shrinking_days(conn, scope, by_day, absent)
        if shrinking:
            more = f" (and {len(shrinking) - 3} more days)" if len(shrinking) > 3 else ""
            error = (
                f"refused to replace {scope.market} {scope.interval}: {'; '.join(shrinking[:3])}{more}; "
                "the source does not prove the missing bars do not exist (to replace anyway: --force)"
            )
            with conn.transaction():
                log(scope, status="refused", checksum=checksum, error=error)
            raise RefusedLoadError(error)
    columns = ", ".join(COPY_COLUMNS)
    conn.execute(f"DROP TABLE IF EXISTS {STAGE}")
    conn.execute(f"CREATE TEMP TABLE {STAGE} AS SELECT {columns} FROM {TABLE} WITH NO DATA")
    conn.execute(f"CREATE INDEX ON {STAGE} (open_time)")
    with conn.cursor() as cur, cur.copy(f"COPY {STAGE} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        for _, chunk in _serialized_chunks(frame, source, CHUNK_ROWS):
            copy.write(chunk)
    conn.execute(f"ANALYZE {STAGE}")
    results = []
    lock_key = tuple(
        int(one_row(conn.execute("SELECT hashtext(%s)", (k,)))[0]) for k in (TABLE, f"{scope.market}/{scope.interval}")
    )
    try:
        for i, day_start in enumerate(days, start=1):
            day_scope = LoadScope(scope.market, scope.interval, scope.symbols, day_start, day_start + timedelta(days=1))
            day_began = time.perf_counter()
            offered = sum(by_day.get(day_start.date(), {}).values())
            with conn.transaction():
                if i < len(days):
                    # Commits do not wait for the disk, except the last day's, which flushes all before it: a
                    # server crash mid-import may lose whole recent days (never part of one); re-running restores.
                    conn.execute("SET LOCAL synchronous_commit = off")
                advisory_xact_lock(conn, *lock_key, what=f"{scope.market}/{scope.interval} load")
                shrinking = (
                    []
                    if force
                    else _shrinking_days(conn, day_scope, {day_start.date(): by_day.get(day_start.date(), {})}, absent)
                )
                if shrinking:  # the table changed since the check above: refuse this day, keep those committed
                    raise RefusedLoadError(f"refused to replace {scope.market} {scope.interval}: {shrinking[0]}")
                where_day = (
                    " WHERE market = %s AND interval = %s AND symbol = ANY(%s) AND open_time >= %s AND open_time < %s"
                )
                params = (scope.market, scope.interval, list(scope.symbols), day_scope.start, day_scope.end)
                deleted = conn.execute(f"DELETE FROM {TABLE}{where_day}", params).rowcount
                loaded = conn.execute(
                    f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {STAGE}{where_day}", params
                ).rowcount
                if loaded != offered:
                    raise DatabaseError(f"{day_scope.describe()}: staged {loaded} rows, expected {offered}")
                _record_known_gaps(conn, day_scope, absent, source)
                duration = time.perf_counter() - day_began
                log_id = log(
                    day_scope,
                    status="loaded",
                    rows_deleted=deleted,
                    rows_loaded=loaded,
                    checksum=checksum,
                    duration_s=duration,
                )
            results.append(LoadResult(day_scope, deleted, loaded, duration, log_id))
            if on_day:
                on_day(i, len(days))
    except RefusedLoadError as exc:
        with conn.transaction():
            log(scope, status="refused", checksum=checksum, error=str(exc))
        raise
    finally:
        if not conn.closed and not conn.broken:
            conn.execute(f"DROP TABLE IF EXISTS {STAGE}")
    return results


def _whole_days(scope: LoadScope) -> list[datetime]:
    midnight = datetime.min.time()
    if scope.start.time() != midnight or scope.end.time() != midnight:
        raise BadInputError(f"a per-day load needs whole UTC days, not {scope.describe()}")
    return [scope.start + timedelta(days=i) for i in range((scope.end - scope.start).days)]


def _rows_per_day_and_symbol(frame: pl.DataFrame) -> dict[date, dict[str, int]]:
    if frame.height == 0:
        return {}
    counts: dict[date, dict[str, int]] = {}
    for day, symbol, n in frame.group_by(pl.col("open_time").dt.date().alias("day"), "symbol").len().iter_rows():
        counts.setdefault(day, {})[symbol] = int(n)
    return counts


def _held_per_day(
    conn: psycopg.Connection, scope: LoadScope, absent: Sequence[ProvenAbsent]
) -> list[tuple[date, str, int]]:
    """(UTC day, symbol, bars held) in ``scope``, not counting held bars inside a range the source proved empty:
    what a load may not shrink. One grouped query."""
    proven = [a for a in absent if a.symbol in scope.symbols]
    return conn.execute(
        f"""
        SELECT (k.open_time AT TIME ZONE 'UTC')::date AS day, k.symbol, count(*) FROM {TABLE} k
        WHERE k.market = %s AND k.interval = %s AND k.symbol = ANY(%s) AND k.open_time >= %s AND k.open_time < %s
          AND NOT EXISTS (
              SELECT 1
              FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS a(symbol, range_start, range_end)
              WHERE a.symbol = k.symbol AND k.open_time >= a.range_start AND k.open_time < a.range_end)
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        (
            scope.market,
            scope.interval,
            list(scope.symbols),
            scope.start,
            scope.end,
            [a.symbol for a in proven],
            [a.start for a in proven],
            [a.end for a in proven],
        ),
    ).fetchall()


def _shrinking_days(
    conn: psycopg.Connection,
    scope: LoadScope,
    offered: dict[date, dict[str, int]],
    absent: Sequence[ProvenAbsent],
) -> list[str]:
    """``DAY SYMBOL: N bars held, M offered`` for each day of ``scope`` where the table holds more bars of a
    symbol than ``offered`` (bars inside a range the source proved empty not counted)."""
    return [
        f"{day} {symbol}: {n} bars held, {offered.get(day, {}).get(symbol, 0)} offered"
        for day, symbol, n in _held_per_day(conn, scope, absent)
        if offered.get(day, {}).get(symbol, 0) < n
    ]


def _span(scope: LoadScope) -> str:
    if scope.end - scope.start == timedelta(days=1) and scope.start.time() == datetime.min.time():
        return f"{scope.start:%Y-%m-%d}"
    return f"[{scope.start.isoformat()} .. {scope.end.isoformat()})"


def _shrinking(
    conn: psycopg.Connection, frame: pl.DataFrame, scope: LoadScope, absent: Sequence[ProvenAbsent]
) -> list[str]:
    """Each symbol that ``frame`` offers fewer bars than the table holds for it in ``scope`` (held bars inside
    a range the source proved empty not counted), as ``SYMBOL: N bars held, M offered``."""
    held: dict[str, int] = {}
    for _, symbol, n in _held_per_day(conn, scope, absent):
        held[symbol] = held.get(symbol, 0) + n
    offered = dict(frame.group_by("symbol").len().iter_rows()) if frame.height else {}
    return [
        f"{symbol}: {held[symbol]} bars held, {offered.get(symbol, 0)} offered"
        for symbol in scope.symbols
        if offered.get(symbol, 0) < held.get(symbol, 0)
    ]


def log_failed_fetch(
    conn: psycopg.Connection,
    scope: LoadScope,
    source: str,
    error: FksError,
    *,
    partition_key: str | None = None,
    run_id: str | None = None,
) -> int:
    """Record a day whose fetch failed before anything reached the loader, in its own transaction: ``rejected``
    for a bad answer (BadInputError), ``failed`` for an unavailable source; returns the log row's id."""
    with conn.transaction():
        return _log(
            conn,
            status="rejected" if isinstance(error, BadInputError) else "failed",
            scope=scope,
            source=source,
            detail=None,
            partition_key=partition_key,
            run_id=run_id,
            error=str(error),
        )


@dataclass(frozen=True)
class SymbolSummary:
    symbol: str
    rows: int
    first_bar: datetime | None
    last_bar: datetime | None
    missing_bars: int
    missing_ranges: list[tuple[datetime, datetime]]
    # Of the missing bars, those inside a range a source proved empty (raw.known_gaps): exchange outages.
    known_gap_bars: int = 0
    known_gap_ranges: list[tuple[datetime, datetime]] = field(default_factory=list)


def scope_summary(conn: psycopg.Connection, scope: LoadScope, *, max_ranges: int = 20) -> list[SymbolSummary]:
    """Rows, first/last bar and missing bars (with the missing runs) per symbol in ``scope``, from the table: two
    statements for the whole universe (no per-symbol queries), so the daily run's cost grows with its rows only."""
    params = {
        "start": scope.start,
        "end": scope.end,
        "step": _pg_interval(scope.interval),
        "market": scope.market,
        "interval": scope.interval,
        "symbols": list(scope.symbols),
    }
    totals = {
        symbol: (int(rows), first, last)
        for symbol, rows, first, last in conn.execute(
            f"SELECT symbol, count(*), min(open_time), max(open_time) FROM {TABLE}"
            " WHERE market = %(market)s AND interval = %(interval)s AND symbol = ANY(%(symbols)s)"
            " AND open_time >= %(start)s AND open_time < %(end)s GROUP BY symbol",
            params,
        ).fetchall()
    }
    # Missing bars: the expected grid of every symbol minus what is there, collapsed into runs (gaps-and-islands).
    gaps: dict[str, list[tuple[datetime, datetime, int, bool]]] = {}
    for symbol, first_missing, last_missing, n, known in conn.execute(
        f"""
        WITH grid AS (
            SELECT s.symbol, g AS open_time
            FROM unnest(%(symbols)s::text[]) AS s(symbol)
            CROSS JOIN generate_series(
                %(start)s::timestamptz, %(end)s::timestamptz - %(step)s::interval, %(step)s::interval) g
        ), missing AS (
            SELECT grid.symbol, grid.open_time, EXISTS (
                SELECT 1 FROM {KNOWN_GAPS} g
                WHERE g.market = %(market)s AND g.interval = %(interval)s AND g.symbol = grid.symbol
                  AND grid.open_time >= g.range_start AND grid.open_time < g.range_end) AS known
            FROM grid
            WHERE NOT EXISTS (
                SELECT 1 FROM {TABLE} k
                WHERE k.market = %(market)s AND k.interval = %(interval)s AND k.symbol = grid.symbol
                  AND k.open_time = grid.open_time)
        ), runs AS (
            SELECT symbol, open_time, known,
                   open_time - (row_number() OVER (PARTITION BY symbol, known ORDER BY open_time))
                       * %(step)s::interval AS island
            FROM missing
        )
        SELECT symbol, min(open_time), max(open_time), count(*), known FROM runs
        GROUP BY symbol, island, known ORDER BY 1, 2
        """,
        params,
    ).fetchall():
        gaps.setdefault(symbol, []).append((first_missing, last_missing, int(n), bool(known)))
    summaries = []
    for symbol in scope.symbols:
        rows, first, last = totals.get(symbol, (0, None, None))
        mine = gaps.get(symbol, [])
        summaries.append(
            SymbolSummary(
                symbol=symbol,
                rows=rows,
                first_bar=first,
                last_bar=last,
                missing_bars=sum(g[2] for g in mine),
                missing_ranges=[(g[0], g[1]) for g in mine[:max_ranges]],
                known_gap_bars=sum(g[2] for g in mine if g[3]),
                known_gap_ranges=[(g[0], g[1]) for g in mine if g[3]][:max_ranges],
            )
        )
    return summaries


def _pg_interval(interval: str) -> str:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    return f"{interval[:-1]} {units[interval[-1]]}"


def read_klines(conn: psycopg.Connection, scope: LoadScope) -> pl.DataFrame:
    """The rows of ``scope`` as a kline frame (exact decimals), ordered by the natural key."""
    query = (
        f"COPY (SELECT {', '.join(KLINE_COLUMNS)} FROM {TABLE}"
        " WHERE market = {market} AND interval = {interval} AND symbol = ANY({symbols})"
        " AND open_time >= {start} AND open_time < {end} ORDER BY symbol, open_time) TO STDOUT (FORMAT csv)"
    )
    sql = psycopg.sql.SQL(query).format(
        market=psycopg.sql.Literal(scope.market),
        interval=psycopg.sql.Literal(scope.interval),
        symbols=psycopg.sql.Literal(list(scope.symbols)),
        start=psycopg.sql.Literal(scope.start),
        end=psycopg.sql.Literal(scope.end),
    )
    buf = io.BytesIO()
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for block in copy:
            buf.write(block)
    if buf.tell() == 0:
        return empty_klines()
    buf.seek(0)
    text_schema = {
        c: (pl.String if KLINE_SCHEMA[c] == KLINE_SCHEMA["open_time"] else KLINE_SCHEMA[c]) for c in KLINE_COLUMNS
    }
    frame = pl.read_csv(buf, has_header=False, new_columns=list(KLINE_COLUMNS), schema_overrides=text_schema)
    return frame.with_columns(
        pl.col(c).str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_unit="us").dt.convert_time_zone("UTC")
        for c in ("open_time", "close_time")
    ).select(KLINE_COLUMNS)


def incomplete_days(
    conn: psycopg.Connection, market: str, interval: str, symbols: list[str], first_day, last_day, bars_per_day: int
) -> list[tuple[str, date, int]]:
    """(symbol, day, rows) for every day in [first_day, last_day] a symbol has fewer than ``bars_per_day`` bars
    (0 when the day is missing altogether), read through the (open_time, interval) index. Bars a source proved
    do not exist (``raw.known_gaps``) count as present: a day with an exchange outage is complete as loaded."""
    rows = conn.execute(
        f"""
        WITH days AS (SELECT d::date AS day FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') d),
        wanted AS (SELECT s AS symbol, day FROM unnest(%(symbols)s::text[]) s CROSS JOIN days),
        have AS (
            SELECT symbol, (open_time AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM {TABLE}
            WHERE market = %(market)s AND interval = %(interval)s AND symbol = ANY(%(symbols)s)
              AND open_time >= %(first)s::date::timestamptz AND open_time < (%(last)s::date + 1)::timestamptz
            GROUP BY 1, 2
        ),
        known AS (
            SELECT g.symbol, (t AT TIME ZONE 'UTC')::date AS day, count(*) AS n
            FROM {KNOWN_GAPS} g
            CROSS JOIN LATERAL generate_series(
                g.range_start, g.range_end - interval '1 day' / %(bars)s, interval '1 day' / %(bars)s) t
            WHERE g.market = %(market)s AND g.interval = %(interval)s AND g.symbol = ANY(%(symbols)s)
              AND g.range_end > %(first)s::date::timestamptz AND g.range_start < (%(last)s::date + 1)::timestamptz
            GROUP BY 1, 2
        )
        SELECT w.symbol, w.day, coalesce(h.n, 0) FROM wanted w
        LEFT JOIN have h USING (symbol, day) LEFT JOIN known k USING (symbol, day)
        WHERE coalesce(h.n, 0) + coalesce(k.n, 0) < %(bars)s ORDER BY w.day, w.symbol
        """,
        {
            "first": first_day,
            "last": last_day,
            "symbols": symbols,
            "market": market,
            "interval": interval,
            "bars": bars_per_day,
        },
    ).fetchall()
    return [(s, d, int(n)) for s, d, n in rows]


def confirmed_gaps(
    conn: psycopg.Connection, market: str, interval: str, days: Sequence[tuple[str, date]]
) -> set[tuple[str, date]]:
    """The (symbol, day)s among ``days`` (incomplete ones) whose bars the source was asked for at least twice, by
    loads of the whole day that the source answered (``loaded``, or ``refused`` because it offered fewer bars than
    held): a re-fetch confirmed what the first load found, so the missing bars do not exist at the source (an
    exchange outage, e.g. Binance's maintenance on 2018-02-08). The gap sensor does not ask again and the checks
    does not request them again. This is the fallback for sources that prove nothing (REST, archives); a source's
    ``ProvenAbsent`` proof is kept in ``raw.known_gaps`` and counts at once (``incomplete_days``, the checks). Bars
    deleted by hand from a day loaded twice also count as known: re-load such a day with ``--force``."""
    if not days:
        return set()
    rows = conn.execute(
        """
        SELECT w.symbol, w.day FROM unnest(%s::text[], %s::date[]) AS w(symbol, day)
        WHERE (
            SELECT count(*) FROM raw.ingest_log l
            WHERE l.market = %s AND l.interval = %s AND l.status IN ('loaded', 'refused') AND w.symbol = ANY(l.symbols)
              AND l.range_start <= w.day::timestamp AT TIME ZONE 'UTC'
              AND l.range_end >= (w.day + 1)::timestamp AT TIME ZONE 'UTC'
        ) >= 2
        """,
        ([s for s, _ in days], [d for _, d in days], market, interval),
    ).fetchall()
    return {(s, d) for s, d in rows}


def symbols_with_data(conn: psycopg.Connection, market: str, interval: str) -> set[str]:
    return {
        s
        for (s,) in conn.execute(
            f"SELECT DISTINCT symbol FROM {TABLE} WHERE market = %s AND interval = %s", (market, interval)
        ).fetchall()
    }


@dataclass(frozen=True)
class SymbolHealth:
    """One symbol's bars in raw.binance_klines for a (market, interval): what `fks metrics` and `fks status` show."""

    symbol: str
    rows: int
    first_open: datetime
    last_open: datetime
    missing_bars: int  # bars absent between the first and the last one held


def symbol_health(conn: psycopg.Connection, market: str, interval: str) -> list[SymbolHealth]:
    """Rows, first/last bar and missing bars of every symbol, in one grouped pass (no per-symbol queries)."""
    rows = conn.execute(
        "SELECT symbol, count(*), min(open_time), max(open_time),"
        " (extract(epoch FROM max(open_time) - min(open_time)) / extract(epoch FROM %s::interval))::bigint"
        " + 1 - count(*)"
        " FROM raw.binance_klines WHERE market = %s AND interval = %s GROUP BY symbol ORDER BY symbol",
        (_pg_interval(interval), market, interval),
    ).fetchall()
    return [SymbolHealth(s, int(n), first, last, max(int(missing), 0)) for s, n, first, last, missing in rows]


def ingest_totals(conn: psycopg.Connection) -> list[tuple[str, str, int, int]]:
    """(source, status, loads, rows) from raw.ingest_log: rows loaded for 'loaded' loads; for refused, rejected
    and failed loads the rows they would have replaced or brought are not known, so ``rows`` counts what was
    logged (rows_loaded, else 0)."""
    return [
        (source, status, int(loads), int(rows or 0))
        for source, status, loads, rows in conn.execute(
            "SELECT source, status, count(*), sum(coalesce(rows_loaded, 0)) FROM raw.ingest_log"
            " GROUP BY source, status ORDER BY source, status"
        ).fetchall()
    ]

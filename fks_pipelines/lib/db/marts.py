"""The ``marts`` schema's store: every read of the dbt marts (``fct_ohlcv_1h``, ``fct_ohlcv_1d``, ``fct_returns``).

dbt builds and owns these tables; Python only reads them, through this module, into numpy/polars or dicts for the
quantitative layer, the documents and the recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl
import psycopg
from psycopg.rows import dict_row

from fks_pipelines.lib.db.connect import one_row

_BAR_LENGTH = {"fct_ohlcv_1h": "1 hour", "fct_ohlcv_1d": "1 day"}


def read_bars(
    conn: psycopg.Connection, table: str, market: str, symbols: list[str], start: datetime, end: datetime
) -> dict[str, dict[str, np.ndarray]]:
    """OHLC arrays (float64) and bucket times per symbol from ``marts.<table>`` with start <= bucket < end."""
    if table not in _BAR_LENGTH:
        raise ValueError(f"not a bar mart: {table}")
    rows = conn.execute(
        f"SELECT symbol, bucket, open::float8, high::float8, low::float8, close::float8, volume::float8"
        f" FROM marts.{table} WHERE market = %s AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s"
        " ORDER BY symbol, bucket",
        (market, symbols, start, end),
    ).fetchall()
    frame = pl.DataFrame(rows, schema=["symbol", "bucket", "open", "high", "low", "close", "volume"], orient="row")
    # One pass to split by symbol (a filter per symbol would scan the frame once per symbol: quadratic).
    parts = {key[0]: part for key, part in frame.partition_by("symbol", as_dict=True).items()} if rows else {}
    empty = frame.clear()
    out = {}
    for symbol in symbols:
        part = parts.get(symbol, empty)
        out[symbol] = {c: part[c].to_numpy() for c in ("open", "high", "low", "close", "volume")} | {
            "bucket": part["bucket"].to_numpy()
        }
    return out


def bars_between(
    bars_by_symbol: dict[str, dict[str, np.ndarray]], start: datetime, end: datetime
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`read_bars`' arrays cut to start <= bucket < end (views, no copy): what read_bars over that range
    returns, from one earlier read that covers it."""
    lo, hi = (np.datetime64(t.astimezone(UTC).replace(tzinfo=None), "us") for t in (start, end))
    out = {}
    for symbol, bars in bars_by_symbol.items():
        buckets = bars["bucket"].astype("datetime64[us]")
        i, j = np.searchsorted(buckets, lo), np.searchsorted(buckets, hi)
        out[symbol] = {k: v[i:j] for k, v in bars.items()}
    return out


def latest_day(conn: psycopg.Connection, market: str) -> datetime | None:
    """The last UTC day in ``marts.fct_ohlcv_1d`` for ``market`` (None when the mart is empty)."""
    return one_row(conn.execute("SELECT max(bucket) FROM marts.fct_ohlcv_1d WHERE market = %s", (market,)))[0]


def bars_end(conn: psycopg.Connection, table: str) -> datetime | None:
    """The end of the latest bar in ``marts.<table>`` over every market and symbol (its bucket plus the bar's
    length), or None when the table is empty."""
    if table not in _BAR_LENGTH:
        raise ValueError(f"not a bar mart: {table}")
    row = conn.execute(f"SELECT max(bucket) + interval '{_BAR_LENGTH[table]}' FROM marts.{table}").fetchone()
    return None if row is None else row[0]


def read_daily_closes(conn: psycopg.Connection, market: str, symbols: list[str]) -> pl.DataFrame:
    """Every daily close (float64) of ``symbols`` in ``marts.fct_ohlcv_1d``: columns symbol, bucket, close."""
    rows = conn.execute(
        "SELECT symbol, bucket, close::float8 FROM marts.fct_ohlcv_1d WHERE market = %s AND symbol = ANY(%s)"
        " ORDER BY symbol, bucket",
        (market, symbols),
    ).fetchall()
    return pl.DataFrame(rows, schema=["symbol", "bucket", "close"], orient="row")


def daily_opens(conn: psycopg.Connection, market: str, symbols: list[str], day: datetime) -> dict[str, float]:
    """The open of UTC day ``day`` per symbol that has a daily bar that day (the paper fills' price)."""
    rows = conn.execute(
        "SELECT symbol, open::float8 FROM marts.fct_ohlcv_1d WHERE market = %s AND symbol = ANY(%s) AND bucket = %s",
        (market, symbols, day),
    ).fetchall()
    return dict(rows)


def daily_bars(
    conn: psycopg.Connection, market: str, symbols: list[str], start: datetime, end: datetime
) -> pl.DataFrame:
    """Daily open and close (float64) of ``symbols`` with start <= bucket < end: columns symbol, bucket, open, close."""
    rows = conn.execute(
        "SELECT symbol, bucket, open::float8, close::float8 FROM marts.fct_ohlcv_1d WHERE market = %s"
        " AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s ORDER BY symbol, bucket",
        (market, symbols, start, end),
    ).fetchall()
    return pl.DataFrame(rows, schema=["symbol", "bucket", "open", "close"], orient="row")


def daily_bars_with_returns(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """One row per symbol and UTC day with start <= bucket < end, by symbol then day: the day's OHLCV (float),
    bar count and bar source (the interval of the bars it was built from) from marts.fct_ohlcv_1d, with its
    simple return and 7-/30-day volatility from marts.fct_returns (None where the returns mart has no row). Dict
    rows keep the columns' names and order, which the documents' metadata (and so their content ids) follow."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT d.market, d.symbol, d.bucket, d.open::float8 AS open, d.high::float8 AS high, d.low::float8 AS low,"
            " d.close::float8 AS close, d.volume::float8 AS volume, d.bar_count, d.bar_source, r.simple_return,"
            " r.volatility_7d, r.volatility_30d"
            " FROM marts.fct_ohlcv_1d d LEFT JOIN marts.fct_returns r USING (market, symbol, bucket)"
            " WHERE d.market = %s AND d.symbol = ANY(%s) AND d.bucket >= %s AND d.bucket < %s"
            " ORDER BY d.symbol, d.bucket",
            (market, list(symbols), start, end),
        ).fetchall()


def closes_before(conn: psycopg.Connection, market: str, symbols: Sequence[str], at: datetime) -> dict[str, float]:
    """Each symbol's last daily close with bucket < ``at`` (float), for the symbols that have one."""
    rows = conn.execute(
        "SELECT s.symbol, (SELECT d.close::float8 FROM marts.fct_ohlcv_1d d WHERE d.market = %s AND d.symbol = s.symbol"
        " AND d.bucket < %s ORDER BY d.bucket DESC LIMIT 1) FROM unnest(%s::text[]) AS s (symbol)",
        (market, at, list(symbols)),
    ).fetchall()
    return {symbol: close for symbol, close in rows if close is not None}


def closes_on(
    conn: psycopg.Connection, keys: Sequence[tuple[str, str, datetime]]
) -> dict[tuple[str, str, datetime], float]:
    """{(market, symbol, bucket): that UTC day's close (float)} for the keys marts.fct_ohlcv_1d has a row for."""
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT d.market, d.symbol, d.bucket, d.close::float8"
        " FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS k (market, symbol, bucket)"
        " JOIN marts.fct_ohlcv_1d d USING (market, symbol, bucket)",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
    ).fetchall()
    return {(m, s, b): c for m, s, b, c in rows}


def volatility_30d_on(
    conn: psycopg.Connection, keys: Sequence[tuple[str, str, datetime]]
) -> dict[tuple[str, str, datetime], float]:
    """{(market, symbol, bucket): that day's annualised 30-day volatility} from marts.fct_returns (non-NULL only)."""
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT r.market, r.symbol, r.bucket, r.volatility_30d"
        " FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS k (market, symbol, bucket)"
        " JOIN marts.fct_returns r USING (market, symbol, bucket) WHERE r.volatility_30d IS NOT NULL",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
    ).fetchall()
    return {(m, s, b): v for m, s, b, v in rows}


def forward_returns(
    conn: psycopg.Connection,
    market: str,
    days: Sequence[tuple[str, datetime]],
    horizons: Sequence[int],
    known_by: datetime,
) -> dict[tuple[str, datetime], dict[int, float]]:
    """{(symbol, day): {h: close(day + h days) / close(day) - 1}} from marts.fct_ohlcv_1d, for each horizon whose
    outcome was known by ``known_by``: the close of day + h exists only once that day has ended (bucket + h + 1
    day <= known_by), so a 7-day outcome is known 7 days after the day's own close. Later rows are not read."""
    if not days:
        return {}
    rows = conn.execute(
        "SELECT a.symbol, a.bucket, h.h, f.close::float8 / nullif(a.close::float8, 0) - 1"
        " FROM unnest(%s::text[], %s::timestamptz[]) AS q (symbol, bucket)"
        " JOIN marts.fct_ohlcv_1d a ON a.market = %s AND a.symbol = q.symbol AND a.bucket = q.bucket"
        " CROSS JOIN unnest(%s::int[]) AS h (h)"
        " JOIN marts.fct_ohlcv_1d f ON f.market = a.market AND f.symbol = a.symbol"
        "  AND f.bucket = a.bucket + h.h * interval '1 day' AND f.bucket + interval '1 day' <= %s"
        " WHERE a.bucket + interval '1 day' <= %s",
        ([s for s, _ in days], [d for _, d in days], market, list(horizons), known_by, known_by),
    ).fetchall()
    out: dict[tuple[str, datetime], dict[int, float]] = {}
    for symbol, bucket, h, value in rows:
        if value is not None:
            out.setdefault((symbol, bucket), {})[int(h)] = float(value)
    return out


def first_hourly_bar(conn: psycopg.Connection, market: str, symbol: str) -> datetime | None:
    """The symbol's first bucket in ``marts.fct_ohlcv_1h`` (None when it has none)."""
    return one_row(
        conn.execute("SELECT min(bucket) FROM marts.fct_ohlcv_1h WHERE market = %s AND symbol = %s", (market, symbol))
    )[0]


def day_summary(conn: psycopg.Connection, day: date) -> list[tuple[str, float, float, float, float, float, int]]:
    """``day``'s daily bar per symbol (every market): symbol, open, high, low, close, volume and the hourly bars
    it was rolled up from, by symbol (the demo's summary)."""
    return conn.execute(
        "SELECT symbol, open, high, low, close, volume, bar_count"
        " FROM marts.fct_ohlcv_1d WHERE bucket = %(day)s::date::timestamptz ORDER BY symbol",
        {"day": day},
    ).fetchall()


def day_returns(conn: psycopg.Connection, day: date) -> list[tuple[str, float | None, float | None, float | None]]:
    """``day``'s log return and 7- and 30-day volatility per symbol, by symbol (the demo's summary)."""
    return conn.execute(
        "SELECT symbol, log_return, volatility_7d, volatility_30d"
        " FROM marts.fct_returns WHERE bucket = %(day)s::date::timestamptz ORDER BY symbol",
        {"day": day},
    ).fetchall()

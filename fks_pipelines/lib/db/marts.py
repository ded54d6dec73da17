"""Reading the dbt marts into numpy/polars for the quantitative layer."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import psycopg

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


def latest_day(conn: psycopg.Connection, market: str) -> datetime | None:
    """The last UTC day in ``marts.fct_ohlcv_1d`` for ``market`` (None when the mart is empty)."""
    return conn.execute("SELECT max(bucket) FROM marts.fct_ohlcv_1d WHERE market = %s", (market,)).fetchone()[0]


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

"""Reading the dbt marts into numpy/polars for the quantitative layer."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import psycopg


def read_bars(
    conn: psycopg.Connection, table: str, market: str, symbols: list[str], start: datetime, end: datetime
) -> dict[str, dict[str, np.ndarray]]:
    """OHLC arrays (float64) and bucket times per symbol from ``marts.<table>`` with start <= bucket < end."""
    if table not in ("fct_ohlcv_1h", "fct_ohlcv_1d"):
        raise ValueError(f"not a bar mart: {table}")
    rows = conn.execute(
        f"SELECT symbol, bucket, open::float8, high::float8, low::float8, close::float8, volume::float8"
        f" FROM marts.{table} WHERE market = %s AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s"
        " ORDER BY symbol, bucket",
        (market, symbols, start, end),
    ).fetchall()
    frame = pl.DataFrame(rows, schema=["symbol", "bucket", "open", "high", "low", "close", "volume"], orient="row")
    out = {}
    for symbol in symbols:
        part = frame.filter(pl.col("symbol") == symbol)
        out[symbol] = {c: part[c].to_numpy() for c in ("open", "high", "low", "close", "volume")} | {
            "bucket": part["bucket"].to_numpy()
        }
    return out


def latest_day(conn: psycopg.Connection, market: str) -> datetime | None:
    """The last UTC day in ``marts.fct_ohlcv_1d`` for ``market`` (None when the mart is empty)."""
    return conn.execute("SELECT max(bucket) FROM marts.fct_ohlcv_1d WHERE market = %s", (market,)).fetchone()[0]


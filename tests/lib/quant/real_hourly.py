"""Real hourly bars (the shared freqtrade files) straight into marts.fct_ohlcv_1h / fct_ohlcv_1d, for tests and
benchmarks of the layers after the marts (the raw -> marts path has its own tests): native hourly bars, as the
marts hold them (bar_source '1h', one bar each; a day's bar counts its hours)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg

MART_DDL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE TABLE IF NOT EXISTS marts.fct_ohlcv_1h (market text, symbol text, bucket timestamptz, open numeric,
    high numeric, low numeric, close numeric, volume numeric, bar_count int, bar_source text,
    PRIMARY KEY (market, symbol, bucket));
CREATE TABLE IF NOT EXISTS marts.fct_ohlcv_1d (LIKE marts.fct_ohlcv_1h INCLUDING ALL);
CREATE TABLE IF NOT EXISTS marts.fct_returns (market text, symbol text, bucket timestamptz,
    simple_return double precision, log_return double precision, volatility_7d double precision,
    volatility_30d double precision);
"""


def hourly_rows(shared_data: Path, symbol: str, start: datetime, end: datetime) -> list[tuple]:
    """(bucket, open, high, low, close, volume) of the freqtrade file's bars with start <= bucket < end."""
    pair = f"{symbol[:-4]}_{symbol[-4:]}"
    rows = json.loads((shared_data / "freqtrade" / f"{pair}-1h.json").read_text())
    lo, hi = start.timestamp() * 1000, end.timestamp() * 1000
    return [(datetime.fromtimestamp(r[0] / 1000, UTC), *r[1:6]) for r in rows if lo <= r[0] < hi]


def load_marts(conn: psycopg.Connection, shared_data: Path, symbols: list[str], start: datetime, end: datetime):
    """Hourly bars of ``symbols`` into marts.fct_ohlcv_1h (created when missing) and their daily rollup."""
    conn.execute(MART_DDL)
    with conn.cursor() as cur:
        for symbol in symbols:
            cur.executemany(
                "INSERT INTO marts.fct_ohlcv_1h VALUES ('spot', %s, %s, %s, %s, %s, %s, %s, 1, '1h')"
                " ON CONFLICT DO NOTHING",
                [(symbol, *r) for r in hourly_rows(shared_data, symbol, start, end)],
            )
    conn.execute(
        "INSERT INTO marts.fct_ohlcv_1d SELECT market, symbol, date_trunc('day', bucket, 'UTC'),"
        " (array_agg(open ORDER BY bucket))[1], max(high), min(low), (array_agg(close ORDER BY bucket DESC))[1],"
        " sum(volume), sum(bar_count), '1h' FROM marts.fct_ohlcv_1h GROUP BY 1, 2, 3 ON CONFLICT DO NOTHING"
    )
    conn.commit()

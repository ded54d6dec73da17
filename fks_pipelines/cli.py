"""``fks``: the platform's command line.

    fks db start|stop|status|url|psql|env   the embedded PostgreSQL (or the external one's URL)
    fks db backup FILE | restore FILE       pg_dump / pg_restore of the data (or Dagster's) database
    fks ingest sample|binance|archive|freqtrade   load raw klines through the same path as the Dagster asset
    fks demo                                the main job on the embedded default, end to end
    fks backfill --start D --end D          every asset over a range of days, as a Dagster backfill (resumable)
    fks dev                                 the database + `dg dev`, stopped together
    fks backtest|hyperopt|lookahead-analysis|plot   one strategy (built-in or a file in FKS_STRATEGIES_DIR)
    fks metrics [serve]                     the platform's Prometheus metrics (printed, or served on 127.0.0.1)
    fks status [--json]                     one screen: database, freshness, last run, checks, LLM (ok/warn/fail)

Everything that talks to a database resolves it the same way: ``FKS_DATABASE_URL`` if set (nothing embedded
is started), else the embedded server under ``$FKS_HOME``, started on demand.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from fks_pipelines.lib.db.knowledge import MAX_K
from fks_pipelines.lib.db.platform import database_urls, embedded_server, platform_env
from fks_pipelines.lib.errors import BadInputError, FksError
from fks_pipelines.lib.outputs import check_output
from fks_pipelines.lib.rag.documents import KINDS
from fks_pipelines.settings import (
    BUNDLED_FREQTRADE_DIR,
    DEFAULT_SYMBOLS,
    PROJECT_ROOT,
    Settings,
    record_partitions_start,
)

DAYS = click.IntRange(1, 3660)  # fks ingest sample / fks demo --days: at most ten years
PORT = click.IntRange(1, 65535)


# -- option types: a bad value is a usage error naming it (exit 2) before anything starts or is written ----
class Day(click.ParamType):
    """A UTC day, ISO spelled (2024-01-31)."""

    name = "date"

    def convert(self, value, param, ctx) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date like 2024-01-31", param, ctx)


class Moment(click.ParamType):
    """An ISO time (2024-01-31, 2024-01-31T12:00, 2024-01-31T12:00+02:00), UTC when it has no offset."""

    name = "time"

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO time like 2024-01-31 or 2024-01-31T12:00+00:00", param, ctx)
        return when if when.tzinfo else when.replace(tzinfo=UTC)


class Interval(click.ParamType):
    """One of Binance's fixed-length kline intervals (1m, 1h, 1d ...)."""

    name = "interval"

    def convert(self, value, param, ctx) -> str:
        from fks_pipelines.lib.klines import interval_timedelta

        try:
            interval_timedelta(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return value


class Intervals(click.ParamType):
    """A comma-separated list of Binance intervals (1h,1d)."""

    name = "intervals"

    def convert(self, value, param, ctx) -> list[str]:
        if isinstance(value, list):
            return value
        items = [Interval().convert(x.strip(), param, ctx) for x in value.split(",") if x.strip()]
        if not items:
            self.fail(f"{value!r} names no interval", param, ctx)
        return items


class GapRate(click.ParamType):
    """The sample source's gap rate: a chance in [0, 1)."""

    name = "rate"

    def convert(self, value, param, ctx) -> float:
        from fks_pipelines.lib.sources.sample import check_gap_rate

        try:
            return check_gap_rate(float(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class CommaChoice(click.ParamType):
    """A comma-separated list of some of ``choices``, in the order given."""

    name = "list"

    def __init__(self, choices: tuple[str, ...]):
        self.choices = choices

    def convert(self, value, param, ctx) -> list[str]:
        if isinstance(value, list):
            return value
        items = [x.strip() for x in value.split(",") if x.strip()]
        if not items:
            self.fail(f"{value!r} names none of {', '.join(self.choices)}", param, ctx)
        for item in items:
            if item not in self.choices:
                self.fail(f"{item!r} is not one of {', '.join(self.choices)}", param, ctx)
        return items


def _apply_env(settings: Settings) -> dict[str, str]:
    env = platform_env(settings)
    os.environ.update(env)
    return env


class ProjectError(click.ClickException):
    """A project error (FksError) as click shows it: one line; exit 1 (2 for bad input: ProjectInputError)."""

    exit_code = 1

    def __init__(self, exc: FksError):
        super().__init__(" ".join(str(exc).split("\n")))


class ProjectInputError(ProjectError):
    """A BadInputError as click shows it: exit 2."""

    exit_code = 2


class FksGroup(click.Group):
    """Turns the project's own errors into one-line click errors for every subcommand, so `fks`, `python -m
    fks_pipelines.cli` and click's test runner all show them the same way (real bugs keep their traceback)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FksError as exc:
            raise (ProjectInputError if isinstance(exc, BadInputError) else ProjectError)(exc) from None


@click.group(cls=FksGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """fks_pipelines: crypto market data -> dbt marts -> backtests -> embeddings -> daily recommendation."""


# -- fks db --------------------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The platform database: the embedded PostgreSQL under $FKS_HOME, or FKS_DATABASE_URL's server."""


def _external_note(settings: Settings) -> bool:
    if settings.database_url:
        from fks_pipelines.lib.db.connect import redact

        click.echo(f"FKS_DATABASE_URL is set ({redact(settings.database_url)}): nothing embedded is managed.")
        return True
    return False


@db.command("start")
def db_start() -> None:
    """Start the embedded server (idempotent), create the fks and dagster databases, apply migrations."""
    settings = Settings.from_env()
    if _external_note(settings):
        return
    from fks_pipelines.lib.db.connect import connect, migrate

    status = embedded_server(settings).start()
    with connect(embedded_server(settings).url()) as conn:
        applied = migrate(conn, settings.timescale())
    click.echo(status.describe())
    if applied:
        click.echo(f"  migrations applied: {', '.join(applied)}")


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server (fast shutdown: open transactions are rolled back)."""
    settings = Settings.from_env()
    if _external_note(settings):
        return
    was_running = embedded_server(settings).stop()
    click.echo("embedded PostgreSQL stopped" if was_running else "embedded PostgreSQL was not running")


@db.command("status")
def db_status() -> None:
    """Whether the server runs, where it listens, its data directory and the extensions available."""
    settings = Settings.from_env()
    if settings.database_url:
        from fks_pipelines.lib.db.connect import connect, one_row, redact

        with connect(settings.database_url) as conn:
            version = one_row(conn.execute("SHOW server_version"))[0]
            extensions = [r[0] for r in conn.execute("SELECT name FROM pg_available_extensions ORDER BY 1")]
        click.echo(f"external PostgreSQL {version} at {redact(settings.database_url)}")
        click.echo(f"  extensions available: {', '.join(extensions)}")
        return
    click.echo(embedded_server(settings).status().describe())


@db.command("url")
@click.option(
    "--database",
    type=click.Choice(["fks", "dagster"]),
    default="fks",
    show_default=True,
    help="fks (the data) or dagster (Dagster's storage).",
)
def db_url(database: str) -> None:
    """Print a libpq URL (with password) for psql, DBeaver or a notebook: psql "$(fks db url)"."""
    settings = Settings.from_env()
    if settings.database_url:
        from fks_pipelines.lib.db.connect import with_database

        click.echo(with_database(settings.database_url, database))
        return
    click.echo(embedded_server(settings).url(database))


def _database_url(settings: Settings, database: str) -> str:
    """The libpq URL of the data or Dagster database (FKS_DATABASE_URL's server, or the embedded one started)."""
    data_url, dagster_url = database_urls(settings)
    return data_url if database == "fks" else dagster_url.replace("postgresql+psycopg2://", "postgresql://", 1)


_DATABASE_OPTION = click.option(
    "--database",
    type=click.Choice(["fks", "dagster"]),
    default="fks",
    show_default=True,
    help="fks (the data) or dagster (Dagster's storage).",
)


@db.command("backup")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@_DATABASE_OPTION
def db_backup(output: Path, database: str) -> None:
    """Dump a database (embedded or FKS_DATABASE_URL's) into OUTPUT with pg_dump (custom format)."""
    from fks_pipelines.lib.db.backup import backup

    written = backup(_database_url(Settings.from_env(), database), output)
    click.echo(f"{database}: backed up to {written} ({written.stat().st_size:,} bytes)")


@db.command("restore")
@click.argument("dump", type=click.Path(path_type=Path))
@_DATABASE_OPTION
@click.option(
    "--force", is_flag=True, help="Restore even when the database holds runs, accounts, trades or loads the dump lacks."
)
def db_restore(dump: Path, database: str, force: bool) -> None:
    """Restore a backup made by `fks db backup` into the database, replacing its objects (one transaction).
    Refused: a dump of the other database, and (without --force) one that would lose newer records, which are
    named. The current state is backed up first under $FKS_HOME/backups (its path is printed)."""
    from fks_pipelines.lib.db.backup import restore

    settings = Settings.from_env()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    before = settings.home / "backups" / f"{database}-before-restore-{stamp}.dump"
    n = 1
    while before.exists():  # never over an earlier one (it may be the very dump being restored)
        n += 1
        before = before.with_name(f"{database}-before-restore-{stamp}-{n}.dump")
    taken = restore(_database_url(settings, database), dump, database=database, force=force, before=before)
    if taken:
        click.echo(f"{database}: the state before the restore is backed up to {taken}")
    click.echo(f"{database}: restored from {dump}")


@db.command("analyst-url")
def db_analyst_url() -> None:
    """Create (once) a login for the read-only analyst role and print its URL: SELECT on the marts, nothing else.
    Applies FKS_ANALYST_STATEMENT_TIMEOUT, _CONNECTION_LIMIT and _WORK_MEM; warns about anything it can do beyond."""
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.roles import ANALYST, analyst_gaps, enable_analyst_login, stored_password, url_for_role

    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    password = stored_password(settings.home / "secrets" / f"{ANALYST}.password")
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        enable_analyst_login(conn, password, settings.analyst_limits())
        gaps = analyst_gaps(conn)
    for gap in gaps:
        click.echo(f"warning: the {ANALYST} role {gap} (see docs/security.md)", err=True)
    click.echo(url_for_role(data_url, ANALYST, password))


class UserError(click.ClickException):
    """A bad file, value or setting: one line on stderr, exit code 2, nothing written."""

    exit_code = 2


@main.group()
def portfolio() -> None:
    """The portfolio ledger: accounts, cash and trades the recommendations are sized for."""


@portfolio.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reset-paper", is_flag=True, help="Also delete the paper fills of the file's paper accounts.")
@click.option("--yes", is_flag=True, help="Delete what the file does not contain without asking (for scripts).")
def portfolio_import(file: Path, reset_paper: bool, yes: bool) -> None:
    """Import FILE: YAML (accounts with cash and trades; each account in it is replaced, its paper fills kept
    unless --reset-paper) or CSV (trades added to existing accounts). Everything is validated first and what is
    replaced is printed; deleting anything the file does not contain is asked first (--yes: without asking; no
    terminal and no --yes: refused). On any error nothing is written."""
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.portfolio import account_states, import_accounts, import_trades, plan_import
    from fks_pipelines.lib.errors import BadInputError
    from fks_pipelines.lib.portfolio.ledger import read_ledger

    try:
        settings = Settings.from_env()
    except BadInputError as e:
        raise UserError(str(e)) from None
    data_url, _ = database_urls(settings)
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        existing = {a for (a,) in conn.execute("SELECT account FROM portfolio.accounts").fetchall()}
        try:
            ledger = read_ledger(file, set(settings.symbols), existing, settings.portfolio_max_bytes)
            if isinstance(ledger, list):
                plan = plan_import(conn, ledger, reset_paper)
                losing = [step for step in plan if step.loses()]
                if losing and not yes and not sys.stdin.isatty():
                    lost = "; ".join(step.describe() for step in losing)
                    raise UserError(f"{file}: {lost}: confirm with --yes (nothing was written)")
                for step in plan:
                    click.echo(f"  {step.describe()}")
                if losing and not yes and not click.confirm("Delete what the file does not contain?", default=False):
                    raise click.ClickException("not confirmed: nothing was written")
                trades = import_accounts(conn, ledger, settings.market, reset_paper, confirmed=plan)
                click.echo(f"imported {len(ledger)} account(s), {trades} trade(s) from {file}")
            else:
                trades = import_trades(conn, ledger, str(file))
                click.echo(f"added {trades} trade(s) to {len(ledger)} account(s) from {file}")
        except BadInputError as e:
            raise UserError(f"{e} (nothing was written)") from None
        for state in account_states(conn, datetime.now(UTC)):
            held = ", ".join(f"{q:g} {s}" for s, q in state.positions.items()) or "no positions"
            click.echo(f"  {state.account:<20} {state.kind:<10} cash {state.cash:,.2f} USDT, {held}")


@main.command()
@click.argument("question")
@click.option("-k", type=click.IntRange(1, MAX_K), default=5, show_default=True, help="How many documents.")
@click.option(
    "--as-of", type=Moment(), help="Only what was known by then (ISO time, UTC when no offset; default: now)."
)
@click.option("--symbols", help="Comma-separated symbols to restrict to.")
@click.option("--kinds", type=CommaChoice(KINDS), help=f"Comma-separated document kinds ({', '.join(KINDS)}).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit: key, kind, symbol, as_of, score, text.")
def search(
    question: str, k: int, as_of: datetime | None, symbols: str | None, kinds: list[str] | None, as_json: bool
) -> None:
    """Hybrid search over the knowledge layer, point-in-time: QUESTION's words (PostgreSQL full-text search) and
    its meaning (embedded with the configured model, pgvector), fused by reciprocal rank, among the documents
    known by --as-of (the same knowledge.hybrid_search analysts call in SQL)."""
    from fks_pipelines.lib.db.connect import connect
    from fks_pipelines.lib.db.knowledge import has_chunks, hybrid_search
    from fks_pipelines.lib.rag.embedder import Embedder

    if not question.strip():
        raise UserError("the question is empty")
    settings = Settings.from_env()
    wanted = _symbols_option(symbols, settings) if symbols else None  # the one symbol rule, before the model loads
    when = as_of or datetime.now(UTC)
    embedder = Embedder(settings.embedding_model, settings.embedding_model_path, settings.embedding_device)
    data_url, _ = database_urls(settings)
    with connect(data_url) as conn:
        if not has_chunks(conn):
            raise click.ClickException(
                "nothing is embedded yet: run `fks demo` or materialize knowledge/document_embeddings"
            )
        hits = hybrid_search(conn, question, embedder.encode([question])[0], k, as_of=when, symbols=wanted, kinds=kinds)
    if as_json:
        for hit in hits:
            row = {"key": hit.key, "kind": hit.kind, "symbol": hit.symbol, "as_of": hit.as_of.isoformat()}
            click.echo(json.dumps(row | {"score": round(hit.score, 6), "text": hit.text}, ensure_ascii=False))
        return
    click.echo(f'{len(hits)} documents known by {when:%Y-%m-%d %H:%M %Z} best matching "{question}":')
    for hit in hits:
        click.echo(f"\n[{hit.score:.4f}] {hit.kind} {hit.symbol or ''} as of {hit.as_of:%Y-%m-%d %H:%M}")
        click.echo("  " + hit.text.replace("\n", "\n  "))


@main.command()
@click.option("--port", type=PORT, default=8080, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-serve", is_flag=True, help="Only generate the docs (dbt_project/target/).")
def docs(port: int, no_serve: bool) -> None:
    """Build dbt's documentation site for the project (models, columns, lineage) and serve it on 127.0.0.1."""
    from fks_pipelines.defs.dbt.resources import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_connection

    data_url, _ = database_urls(Settings.from_env())
    dbt = [DBT_EXECUTABLE]
    common = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    with dbt_connection(data_url):
        subprocess.run([*dbt, "docs", "generate", *common], check=True)
        if not no_serve:
            click.echo(f"dbt docs on http://127.0.0.1:{port} (Ctrl-C to stop)")
            subprocess.run([*dbt, "docs", "serve", *common, "--host", "127.0.0.1", "--port", str(port), "--no-browser"])


@db.command("env")
def db_env() -> None:
    """Print shell exports for running Dagster or dbt by hand: eval "$(fks db env)"; dagster dev -w workspace.yaml."""
    for key, value in _apply_env(Settings.from_env()).items():
        click.echo(f"export {key}='{value}'")


@db.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def db_psql(psql_args: tuple[str, ...]) -> None:
    """Open the bundled psql on the fks database (extra arguments go to psql, e.g. -c 'select 1')."""
    settings = Settings.from_env()
    if settings.database_url:
        psql = shutil.which("psql")
        if not psql:
            from fks_pipelines.lib.db.embedded import bin_dir

            psql = str(bin_dir() / "psql")
        os.execvp(psql, [psql, settings.database_url, *psql_args])
    server = embedded_server(settings)
    server.start()
    cmd, env = server.psql_command()
    os.execvpe(cmd[0], [*cmd, *psql_args], env)


# -- fks ingest ----------------------------------------------------------------------------------------------
def _check_day_range(start: date, end: date) -> None:
    """--start .. --end: at least one day, none of them still to come (UTC)."""
    today = datetime.now(UTC).date()
    if end < start:
        raise click.BadParameter(f"{end} is before --start {start}", param_hint="'--end'")
    if end > today:
        raise click.BadParameter(f"{end} is after today ({today}, UTC)", param_hint="'--end'")


def _symbols_option(value: str | None, settings: Settings) -> list[str]:
    """--symbols, each by the one symbol rule (a bad one: BadInputError, exit 2), or the configured universe."""
    from fks_pipelines.lib.symbols import check_symbol

    if not value:
        return list(settings.symbols)
    return [check_symbol(s.strip().upper(), where="--symbols") for s in value.split(",")]


FORCE_OPTION = click.option(
    "--force", is_flag=True, help="Replace a day even with fewer bars than it holds (refused otherwise, exit 1)."
)


def _load_days(
    source, market: str, interval: str, symbols: list[str], start: date, end: date, force: bool = False
) -> None:
    """Load each day [start, end] through the asset's load path, with progress and a final summary. A day that
    has not ended is a user error (exit 2, nothing fetched); a refused replacement stops with exit 1."""
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.raw import SymbolSummary, scope_summary
    from fks_pipelines.lib.klines import LoadScope, check_closed, empty_klines
    from fks_pipelines.lib.sources.load import load_day

    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    if days:  # a day that has not ended: BadInputError before anything is fetched (exit 2)
        check_closed(
            empty_klines(),
            LoadScope.for_day(market, interval, symbols, days[-1].isoformat()),
            now=datetime.now(UTC),
        )
    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    summaries: dict[str, list[SymbolSummary]] = {}
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        began = time.perf_counter()
        for i, day in enumerate(days, start=1):
            # A refused replacement (RefusedLoadError) stops here: one line, exit 1 (run() below).
            result, _ = load_day(conn, source, market, interval, symbols, day, force=force)
            scope = result.scope
            click.echo(f"  [{i}/{len(days)}] {day}  {result.rows_loaded:>7} rows  ({result.duration_s:.2f}s)", err=True)
            for s in scope_summary(conn, scope, max_ranges=5):
                summaries.setdefault(s.symbol, []).append(s)
        elapsed = time.perf_counter() - began
    _print_summary(summaries, elapsed)


def _print_summary(summaries: dict, elapsed: float) -> None:
    click.echo(f"\n{'symbol':<14}{'rows':>10}  {'first bar (UTC)':<18}{'last bar (UTC)':<18}{'missing':>8}")
    for symbol, parts in summaries.items():
        rows = sum(p.rows for p in parts)
        firsts = [p.first_bar for p in parts if p.first_bar]
        lasts = [p.last_bar for p in parts if p.last_bar]
        missing = sum(p.missing_bars for p in parts)
        first = f"{min(firsts):%Y-%m-%d %H:%M}" if firsts else "-"
        last = f"{max(lasts):%Y-%m-%d %H:%M}" if lasts else "-"
        click.echo(f"{symbol:<14}{rows:>10}  {first:<18}{last:<18}{missing:>8}")
        for p in parts:
            for a, b in p.missing_ranges:
                click.echo(f"    gap {a:%Y-%m-%d %H:%M} .. {b:%H:%M}")
    click.echo(f"done in {elapsed:.1f}s")


@main.group()
def ingest() -> None:
    """Load raw klines into raw.binance_klines (the same transactional path as the Dagster asset)."""


@ingest.command("sample")
@click.option("--days", type=DAYS, default=30, show_default=True, help="How many complete UTC days, ending yesterday.")
@click.option("--symbols", help="Comma-separated (default: FKS_SYMBOLS / the configured universe).")
@click.option("--seed", default=None, type=int, help="Generator seed (default FKS_SAMPLE_SEED or 42).")
@click.option(
    "--gap-rate", type=GapRate(), default=0.0, show_default=True, help="Share of minutes to leave out, in short runs."
)
@FORCE_OPTION
def ingest_sample(days: int, symbols: str | None, seed: int | None, gap_rate: float, force: bool) -> None:
    """Generate the deterministic offline sample (no network) and load it."""
    from fks_pipelines.lib.sources import SampleSource

    settings = Settings.from_env()
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    source = SampleSource(seed=settings.sample_seed if seed is None else seed, gap_rate=gap_rate)
    _load_days(source, "spot", "1m", _symbols_option(symbols, settings), start, end, force)


@ingest.command("binance")
@click.option("--symbols", help="Comma-separated, e.g. BTCUSDT,ETHUSDT (default: the configured universe).")
@click.option("--interval", type=Interval(), default="1m", show_default=True)
@click.option("--market", type=click.Choice(["spot", "usdm"]), default="spot", show_default=True)
@click.option("--start", "start_", type=Day(), required=True, help="First UTC day, e.g. 2024-01-01.")
@click.option("--end", type=Day(), required=True, help="Last UTC day (inclusive), e.g. 2024-01-31.")
@FORCE_OPTION
def ingest_binance(symbols: str | None, interval: str, market: str, start_: date, end: date, force: bool) -> None:
    """Fetch klines from Binance's REST API (rate-limit aware) and load them, one UTC day at a time."""
    from fks_pipelines.lib.sources import build_source

    _check_day_range(start_, end)
    settings = Settings.from_env()
    pages = {"n": 0}

    def on_page(symbol: str, rows: int) -> None:
        pages["n"] += 1
        click.echo(f"    {symbol}: page {pages['n']} ({rows} bars)", err=True)

    source = build_source(
        "binance_rest",
        rest_base_url=settings.rest_base_url,
        on_page=on_page,
        rest_max_retry_after_s=settings.binance_max_retry_after_s,
    )
    _load_days(source, market, interval, _symbols_option(symbols, settings), start_, end, force)


@ingest.command("archive")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--market", type=click.Choice(["spot", "usdm", "coinm"]), help="Override the market read from the path.")
@click.option("--symbol", help="Symbol, for files whose name does not say it (REST JSON dumps).")
@click.option("--interval", type=Interval(), help="Interval, for files whose name does not say it.")
@FORCE_OPTION
def ingest_archive(
    paths: tuple[Path, ...], market: str | None, symbol: str | None, interval: str | None, force: bool
) -> None:
    """Load data.binance.vision files (.zip/.csv, .CHECKSUM verified when present) or REST JSON dumps.

    Each file replaces exactly the day (or month) its name covers, one transaction per UTC day; a bad file is
    rejected with the reason and nothing of it is written; the other files still load.
    """
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.raw import SymbolSummary, replace_klines, scope_summary
    from fks_pipelines.lib.sources.files import read_kline_file
    from fks_pipelines.lib.sources.imports import load_kline_file, whole_days

    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".zip", ".csv", ".json"))
        else:
            files.append(path)
    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    failures = 0
    summaries: dict[str, list[SymbolSummary]] = {}
    began = time.perf_counter()
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        for i, path in enumerate(files, start=1):
            try:
                parsed = read_kline_file(path, market=market, symbol=symbol, interval=interval)
                if whole_days(parsed.scope):  # a daily or monthly archive: one transaction per UTC day
                    rows = load_kline_file(conn, parsed, force=force).rows
                else:  # a REST dump: exactly the span it holds
                    rows = replace_klines(
                        conn,
                        parsed.frame,
                        parsed.scope,
                        source="file",
                        detail=str(path),
                        checksum=parsed.sha256,
                        force=force,
                    ).rows_loaded
            except FksError as exc:
                failures += 1
                click.echo(f"  [{i}/{len(files)}] REJECTED {exc}", err=True)
                continue
            click.echo(f"  [{i}/{len(files)}] {path.name}: {rows} rows ({parsed.scope.describe()})", err=True)
            for s in scope_summary(conn, parsed.scope, max_ranges=5):
                summaries.setdefault(f"{parsed.scope.market}:{s.symbol}:{parsed.scope.interval}", []).append(s)
    _print_summary(summaries, time.perf_counter() - began)
    if failures:
        raise click.ClickException(
            f"{failures} of {len(files)} file(s) rejected (see above); nothing of them was written"
        )


@ingest.command("freqtrade")
@click.argument("path", type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option(
    "--market", type=click.Choice(["spot", "usdm", "coinm"]), help="Override the market the file names imply."
)
@click.option("--symbols", help="Only these symbols, comma-separated (BTCUSDT for the pair BTC/USDT).")
@click.option("--timeframes", type=Intervals(), help="Only these timeframes, comma-separated (1h,1d).")
@FORCE_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON summary line on stdout (progress stays on stderr).")
def ingest_freqtrade(
    path: Path, market: str | None, symbols: str | None, timeframes: list[str] | None, force: bool, as_json: bool
) -> None:
    """Load freqtrade OHLCV files: one file or a data directory (user_data/data/binance, futures/ included).

    json, json.gz, feather and parquet; BTC_USDT-1h.json is spot BTCUSDT, futures/BTC_USDT_USDT-1h-futures.feather
    USD-M BTCUSDT. Every file is validated before anything is written (a bad one: exit 2, nothing written); each
    UTC day is one transaction; quote volume, trades and taker volumes stay NULL (freqtrade does not keep them).
    """
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.raw import SymbolSummary, scope_summary
    from fks_pipelines.lib.sources.imports import FileLoad, import_freqtrade

    settings = Settings.from_env()
    wanted = _symbols_option(symbols, settings) if symbols else None
    data_url, _ = database_urls(settings)

    def on_file(i: int, total: int, load: FileLoad) -> None:
        late = f", {load.left_out_rows} bars of today left for later" if load.left_out_rows else ""
        click.echo(
            f"  [{i}/{total}] {load.path.name}: {load.rows} rows, {load.days} days ({load.seconds:.1f}s{late})",
            err=True,
        )

    began = time.perf_counter()
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        click.echo(f"reading {path} ...", err=True)
        result = import_freqtrade(
            conn, path, market=market, symbols=wanted, intervals=timeframes, force=force, on_file=on_file
        )
        for skipped in result.skipped:
            click.echo(f"  skipped {skipped.path}: {skipped.reason}", err=True)
        summaries: dict[str, list[SymbolSummary]] = {}
        gaps: dict[str, int] = {}
        for load in result.loads:
            key = f"{load.scope.market}:{','.join(load.scope.symbols)}:{load.scope.interval}"
            for s in scope_summary(conn, load.scope, max_ranges=5):
                summaries.setdefault(key, []).append(s)
                gaps[key] = gaps.get(key, 0) + len(s.missing_ranges)
    elapsed = time.perf_counter() - began
    if as_json:
        files = []
        for load in result.loads:
            key = f"{load.scope.market}:{','.join(load.scope.symbols)}:{load.scope.interval}"
            files.append(load.as_json() | {"missing_bars": sum(s.missing_bars for s in summaries.get(key, []))})
        click.echo(
            json.dumps(
                {
                    "files": files,
                    "skipped": [{"path": str(s.path), "reason": s.reason} for s in result.skipped],
                    "rows": sum(load.rows for load in result.loads),
                    "days": sum(load.days for load in result.loads),
                    "seconds": round(elapsed, 3),
                }
            )
        )
        return
    _print_summary(summaries, elapsed)


# -- fks backfill -----------------------------------------------------------------------------------------------
@main.command()
@click.option("--start", "start_", type=Day(), required=True, help="First UTC day, e.g. 2021-01-01.")
@click.option("--end", type=Day(), required=True, help="Last UTC day (inclusive).")
@click.option("--symbols", help="Comma-separated (default: FKS_SYMBOLS / the configured universe).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object at the end: backfill id, status, steps.")
def backfill(start_: date, end: date, symbols: str | None, as_json: bool) -> None:
    """A Dagster asset backfill of every asset over the days [--start, --end], on the UI's backfill page; the
    same arguments again resume an unfinished one. Without `fks dev`'s daemon, this process drives it."""
    import json

    from dagster import DagsterInstance

    from fks_pipelines.runs import drive_backfill, submit_backfill, workspace_context

    settings = Settings.from_env()  # with what the home recorded (a demo's data), as `fks dev` serves it
    _check_day_range(start_, end)
    if start_ < date.fromisoformat(settings.partitions_start):
        raise click.BadParameter(
            f"{start_} is before the first partition {settings.partitions_start} (FKS_PARTITIONS_START)",
            param_hint="'--start'",
        )
    chosen = _symbols_option(symbols, settings)
    env = _apply_env(settings)
    env["FKS_SYMBOLS"] = ",".join(chosen)  # the run's universe, for the code location and the runs it starts
    os.environ.update(env)
    steps: list[str] = []

    def progress(line: str) -> None:
        steps.append(line)
        click.echo(f"  [{len(steps)}] {line}", err=True)

    # The code server and the runs' processes inherit this one's stdout: theirs go to stderr, stdout keeps the result.
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with DagsterInstance.get() as instance, workspace_context(instance) as process_context:
            backfill_id = submit_backfill(instance, process_context, start_, end, chosen)
            click.echo(f"fks backfill {backfill_id}: {start_} .. {end}, {', '.join(chosen)}", err=True)
            status = drive_backfill(instance, process_context, backfill_id, progress)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    if as_json:
        click.echo(json.dumps({"backfill_id": backfill_id, "status": status, "steps": steps}))
    else:
        click.echo(f"backfill {backfill_id}: {status} ({len(steps)} steps)")
    if status not in ("COMPLETED", "COMPLETED_SUCCESS"):
        raise SystemExit(1)


# -- fks demo / fks dev --------------------------------------------------------------------------------------
# The bundled real history the demo runs on by default (fks_pipelines/data/freqtrade), and the days before its
# window that warm the marts, regimes and the first weekly choices up (the paper account opens after them).
DEMO_REAL = {"FKS_SOURCE": "freqtrade", "FKS_INTERVAL": "1h", "FKS_SYMBOLS": "BTCUSDT,ETHUSDT"}
DEMO_WARMUP_DAYS = 30


@main.command()
@click.option(
    "--days",
    type=DAYS,
    default=None,
    help="Days the example paper account follows the recommendations: the last ones of the real history"
    " (default 90, after 30 days of warm-up), or with --sample the last ones ending yesterday (default 30).",
)
@click.option(
    "--sample", is_flag=True, help="The synthetic offline sample (1-minute bars up to yesterday), not real history."
)
def demo(days: int | None, sample: bool) -> None:
    """Run the main job through Dagster on the embedded default and print the result: by default on the bundled
    real BTC/ETH hourly history (its last 90 days), with --sample on the synthetic sample up to yesterday."""
    from fks_pipelines.demo import run_demo
    from fks_pipelines.lib.sources.freqtrade import whole_days

    # The environment as exported (not what an earlier demo recorded): an exported variable always wins.
    exported = Settings.from_env(recorded=False)
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
    # Partitions and data that fit: unless exported, this home's daily partitions start on the demo's first day (or
    # an earlier demo's), on the data it ran on, for the run it launches and for `fks dev` afterwards.
    start = record_partitions_start(exported.home, first, unset).isoformat()
    if "partitions_start" in exported.model_fields_set:
        start = exported.partitions_start
    env = _apply_env(Settings.from_env())
    run_demo(first=first, opened=opened, last=last, env=env, partitions_start=start)


@main.command()
@click.option("--port", type=PORT, default=3000, show_default=True, help="Dagster webserver port (127.0.0.1).")
def dev(port: int) -> None:
    """Start the database and `dg dev` (UI on 127.0.0.1); Ctrl-C stops Dagster and all its children."""
    env = dict(os.environ, **_apply_env(Settings.from_env()))
    # `dg dev` (what Dagster 1.13 recommends over `dagster dev`) on the project's workspace file. It runs in
    # DAGSTER_HOME, the one instance config (a copy of the project's dagster.yaml), so Dagster does not find a
    # second dagster.yaml in the current folder; the project root leads PYTHONPATH so the code server imports this tree.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    cmd = [
        str(Path(sys.executable).with_name("dg")),
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # Its own process group, so one signal reaches the webserver, the daemon and the code server: `dagster dev`
    # started without job control ignores SIGINT/SIGTERM sent to it alone.
    proc = subprocess.Popen(cmd, env=env, cwd=env["DAGSTER_HOME"], start_new_session=True)
    stop_dagster_on_signals(proc)
    sys.exit(proc.wait())


# -- fks backtest / hyperopt / lookahead-analysis / plot: any strategy by name -------------------------------
STRATEGY_OPTION = click.option(
    "--strategy", "strategy_name", required=True, help="A built-in or a strategy file's name."
)
TIMERANGE_OPTION = click.option(
    "--timerange", help="START-END as YYYYMMDD-YYYYMMDD (UTC days, END exclusive); either side may be empty."
)
INTERVAL_OPTION = click.option(
    "--interval", type=Interval(), help="Bar length: 1h or 1d from the marts (default 1h); --file: the file's."
)
FILE_OPTION = click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Binance kline files (archive CSV/zip, REST JSON) to backtest instead of the database; repeatable.",
)


def _strategy(name: str, settings: Settings):
    """The strategy by name (the built-ins and FKS_STRATEGIES_DIR's files, read now); an unknown name or a
    refused file: one line, exit 2."""
    from fks_pipelines.lib.quant.strategy_files import StrategyLimits, load_strategies

    limits = StrategyLimits(settings.strategy_max_grid, settings.strategy_timeout_s)
    strategies = load_strategies(settings.strategies_dir, limits)
    if name not in strategies and name not in strategies.errors:
        raise BadInputError(f"--strategy: unknown {name!r}; choose from {', '.join(strategies)}")
    return strategies[name]  # a refused file: its one-line error (StrategyFileError)


def _timerange(value: str | None) -> tuple[datetime | None, datetime | None]:
    if not value:
        return None, None
    try:
        first, last = value.split("-")
        parse = lambda v: datetime.strptime(v, "%Y%m%d").replace(tzinfo=UTC) if v else None  # noqa: E731
        start, end = parse(first), parse(last)
    except ValueError:
        raise BadInputError(f"--timerange: {value!r} is not like 20240101-20240301") from None
    if start and end and end <= start:
        raise BadInputError(f"--timerange: {value!r} ends before it starts")
    return start, end


def _bars(settings: Settings, symbols: list[str], interval: str | None, timerange: str | None, files: tuple[Path, ...]):
    """(bars per symbol (oldest first) from --file or the marts within --timerange, their interval); none: exit 2."""
    import numpy as np

    start, end = _timerange(timerange)
    if files:
        import polars as pl

        from fks_pipelines.lib.sources.files import read_kline_file

        frame = pl.concat([read_kline_file(f).frame for f in files], how="diagonal_relaxed")
        frame = frame.unique(["symbol", "open_time"]).sort("symbol", "open_time")
        intervals = frame["interval"].unique().to_list()
        if len(intervals) > 1 or (interval and intervals != [interval]):
            raise BadInputError(f"--file: bars of {', '.join(intervals)}; give files of one interval (--interval)")
        interval = intervals[0] if intervals else interval
        if start:
            frame = frame.filter(pl.col("open_time") >= start)
        if end:
            frame = frame.filter(pl.col("open_time") < end)
        out = {}
        for symbol in frame["symbol"].unique(maintain_order=True).to_list():
            part = frame.filter(pl.col("symbol") == symbol)
            columns = {c: part[c].cast(pl.Float64).to_numpy() for c in ("open", "high", "low", "close", "volume")}
            out[symbol] = columns | {"bucket": part["open_time"].to_numpy()}
    else:
        from fks_pipelines.lib.db.connect import connect
        from fks_pipelines.lib.db.marts import read_bars

        interval = interval or "1h"
        if interval not in ("1h", "1d"):
            raise BadInputError(f"--interval: the marts hold 1h and 1d bars, not {interval}")
        data_url, _ = database_urls(settings)
        with connect(data_url) as conn:
            out = read_bars(
                conn,
                f"fct_ohlcv_{interval}",
                settings.market,
                symbols,
                start or datetime(1970, 1, 1, tzinfo=UTC),
                end or datetime(2100, 1, 1, tzinfo=UTC),
            )
    out = {s: b for s, b in out.items() if len(np.asarray(b["close"]))}
    if not out:
        where = "in --file" if files else f"in marts.fct_ohlcv_{interval} (run `fks demo` or materialize the marts)"
        raise BadInputError(f"no bars for {', '.join(symbols)} {timerange or ''} {where}")
    return out, interval


def _params(strategy, pairs: tuple[str, ...]) -> dict:
    """--params k=v: the strategy's defaults with each named parameter replaced, typed like its GRID values."""
    params = dict(strategy.defaults)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in strategy.grid:
            raise BadInputError(f"--params: {pair!r} is not NAME=VALUE with NAME in {', '.join(strategy.grid)}")
        kind = type(strategy.grid[key][0])
        params[key] = _param_value(key, raw, kind)
    if not strategy.valid(params):
        raise BadInputError(f"--params: {params} is not a valid combination for {strategy.name}")
    return params


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a finite number"}


def _param_value(key: str, raw: str, kind: type):
    """One --params value typed like the strategy's GRID values: bool from true/false, yes/no, on/off, 1/0
    (any case); int from an integral number; float finite; a bad one: BadInputError naming it."""
    try:
        if kind is bool:
            return _BOOLS[raw.strip().lower()]
        if kind is int and float(raw).is_integer():
            return int(float(raw))
        value = kind(raw)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(raw)
        return value
    except (KeyError, ValueError):
        raise BadInputError(f"--params: {key}={raw!r} is not {_KIND_NAMES.get(kind, kind.__name__)}") from None


def _config(interval: str, fee: float, workers: int = 1, days_per_year: float = 365.0, conventions=None):
    from fks_pipelines.lib.quant.backtest import DEFAULT_CONVENTIONS, BacktestConfig

    return BacktestConfig(
        fees=fee,
        freq=interval.replace("m", "min") if interval.endswith("m") else interval,
        workers=workers,
        days_per_year=days_per_year,
        conventions=conventions or DEFAULT_CONVENTIONS,
    )


FEE_OPTION = click.option(
    "--fee", type=click.FloatRange(0, 0.1), default=0.001, show_default=True, help="Per fill (0.001 = 0.1%)."
)


@main.command()
@STRATEGY_OPTION
@click.option("--symbols", help="Comma-separated symbols (default: FKS_SYMBOLS).")
@TIMERANGE_OPTION
@INTERVAL_OPTION
@click.option("--params", "pairs", multiple=True, help="NAME=VALUE (repeatable); the strategy's defaults otherwise.")
@FEE_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the metrics and the trades.")
@click.option("--export", type=click.Path(dir_okay=False, path_type=Path), help="Write every trade (JSON) here.")
@click.option(
    "--days-per-year",
    type=click.FloatRange(1, 366),
    default=365.0,
    show_default=True,
    help="Annualisation (Sharpe, Sortino, CAGR): 365 for crypto; 252 is the equities convention.",
)
@click.option(
    "--open-trades",
    type=click.Choice(["count", "exclude"]),
    default="count",
    show_default=True,
    help="A trade open at the end: counted in the trade statistics (marked at the last close) or left out.",
)
@click.option(
    "--profit-factor",
    type=click.Choice(["pnl", "returns"]),
    default="pnl",
    show_default=True,
    help="Over trade PnL (inf with no loss) or trade returns (NaN with no loss, backtesting.py).",
)
@click.option(
    "--exposure",
    type=click.Choice(["exclude-exit-bar", "include-exit-bar"]),
    default="exclude-exit-bar",
    show_default=True,
    help="Bars ending with a position held, or also each exit bar (entry to exit inclusive, backtesting.py).",
)
@FILE_OPTION
def backtest(
    strategy_name,
    symbols,
    timerange,
    interval,
    pairs,
    fee,
    as_json,
    export,
    days_per_year,
    open_trades,
    profit_factor,
    exposure,
    files,
) -> None:
    """One backtest of a strategy on the bars in the database (or --file): freqtrade-style tables of the
    summary, per symbol, per exit reason, and with --export every trade. Signals at bar t fill at t+1's open.
    The conventions options choose how the metrics count where platforms differ (docs/strategies.md)."""
    import json

    from fks_pipelines.lib.quant.report import backtest_symbol, json_ready, summary, text_report

    if export:
        check_output(export, "--export")
    settings = Settings.from_env()
    strategy = _strategy(strategy_name, settings)
    params = _params(strategy, pairs)
    bars, interval = _bars(settings, _symbols_option(symbols, settings), interval, timerange, files)
    from fks_pipelines.lib.quant.backtest import Conventions

    conventions = Conventions(open_trades=open_trades, profit_factor=profit_factor, exposure=exposure.replace("-", "_"))
    config = _config(interval, fee, days_per_year=days_per_year, conventions=conventions)
    results = [backtest_symbol(symbol, b, strategy, params, config) for symbol, b in bars.items()]
    totals = summary(results, config)
    trades = [t for r in results for t in r.trades]
    if export:
        export.write_text(json.dumps(json_ready({"strategy": strategy.name, "params": params, "trades": trades})))
    if as_json:
        payload = {
            "strategy": strategy.name,
            "params": params,
            "metrics": totals,
            "symbols": {r.symbol: r.metrics for r in results},
            "trades": trades,
        }
        click.echo(json.dumps(json_ready(payload)))
    else:
        click.echo(text_report(strategy, params, results, totals, trades=export is not None))


@main.command("lookahead-analysis")
@STRATEGY_OPTION
@click.option("--symbols", help="Comma-separated symbols (default: FKS_SYMBOLS).")
@TIMERANGE_OPTION
@INTERVAL_OPTION
@click.option("--samples", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Bars t checked.")
@click.option("--param-sets", type=click.IntRange(1, 1000), default=3, show_default=True, help="Parameter sets.")
@FILE_OPTION
def lookahead_analysis(strategy_name, symbols, timerange, interval, samples, param_sets, files) -> None:
    """Catch look-ahead bias: signals recomputed on the history truncated at sampled bars t must equal the
    full history's. Exit 1 listing the first bars and parameters where they differ; 0 for an honest strategy."""
    from fks_pipelines.lib.quant.lookahead import LookAheadError, lookahead_findings

    settings = Settings.from_env()
    strategy = _strategy(strategy_name, settings)
    bars, interval = _bars(settings, _symbols_option(symbols, settings), interval, timerange, files)
    began = time.perf_counter()
    for symbol, b in bars.items():
        findings = lookahead_findings(strategy, b, samples=samples, max_sets=param_sets)
        if findings:
            for f in findings:
                click.echo(f"{symbol} {f.line()}")
            raise LookAheadError(
                f"{strategy.name} uses the future: {len(findings)} signals changed when later bars were removed"
            )
    click.echo(
        f"{strategy.name}: no look-ahead in {len(bars)} symbols x {samples} truncation points x {param_sets} parameter "
        f"sets ({time.perf_counter() - began:.2f}s)"
    )


@main.command()
@STRATEGY_OPTION
@click.option(
    "--objective",
    type=click.Choice(["sharpe", "sortino", "calmar", "return_over_drawdown"]),
    default="sharpe",
    show_default=True,
)
@click.option("--search", "method", type=click.Choice(["grid", "optuna"]), default="grid", show_default=True)
@click.option("--trials", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Optuna trials.")
@click.option("--walk-forward", is_flag=True, help="Walk forward (in-sample choice, out-of-sample judgement).")
@click.option(
    "--in-sample", type=click.IntRange(10), default=336, show_default=True, help="Walk-forward in-sample bars."
)
@click.option("--out-of-sample", type=click.IntRange(1), default=96, show_default=True, help="Out-of-sample bars.")
@click.option("--symbols", help="Comma-separated symbols (default: FKS_SYMBOLS).")
@TIMERANGE_OPTION
@INTERVAL_OPTION
@FEE_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per symbol: the best parameters and score.")
@FILE_OPTION
def hyperopt(
    strategy_name,
    objective,
    method,
    trials,
    walk_forward,
    in_sample,
    out_of_sample,
    symbols,
    timerange,
    interval,
    fee,
    as_json,
    files,
) -> None:
    """Search a strategy's GRID for the best --objective: the whole grid (on every core, FKS_SWEEP_WORKERS),
    Optuna, or walked forward; a progress bar and a summary table (the sweep and walk-forward assets' code)."""
    import json

    from fks_pipelines.lib.quant.backtest import best, run_sweep
    from fks_pipelines.lib.quant.optimize import optimize_with_optuna
    from fks_pipelines.lib.quant.report import json_ready, table
    from fks_pipelines.lib.quant.walk_forward import Search
    from fks_pipelines.lib.quant.walk_forward import walk_forward as walk

    settings = Settings.from_env()
    strategy = _strategy(strategy_name, settings)
    bars, interval = _bars(settings, _symbols_option(symbols, settings), interval, timerange, files)
    config = _config(interval, fee, settings.sweep_workers)
    grid = strategy.parameter_sets()
    rows, out = [], {}
    for symbol, b in bars.items():
        if walk_forward:
            windows, _ = walk(
                b,
                strategy,
                grid,
                in_sample=in_sample,
                out_of_sample=out_of_sample,
                objective=objective,
                config=config,
                search=Search(method, trials),
            )
            if windows.height == 0:
                raise BadInputError(
                    f"{symbol}: {len(b['close'])} bars are too few for one {in_sample}+{out_of_sample} window"
                )
            chosen = {
                "params": windows["params"][-1],
                "score": float(windows["in_sample_score"][-1]),
                "oos_total_return": float((1 + windows["oos_total_return"]).product() - 1),
            }
        elif method == "optuna":
            with click.progressbar(length=trials, label=f"{symbol} optuna", file=sys.stderr) as progress:
                chosen, _ = optimize_with_optuna(b, strategy, objective=objective, n_trials=trials, config=config)
                progress.update(trials)
        else:
            with click.progressbar(length=len(grid), label=f"{symbol} grid", file=sys.stderr) as progress:
                seen = [0]

                def advance(done: int, _total: int, seen: list[int] = seen) -> None:
                    progress.update(done - seen[0])
                    seen[0] = done

                chosen = best(run_sweep(b, strategy, grid, config, advance), objective)
        out[symbol] = chosen
        rows.append(
            [
                symbol,
                json.dumps(chosen["params"]),
                f"{chosen['score']:.3f}",
                f"{chosen.get('total_return', chosen.get('oos_total_return', float('nan'))):.2%}",
                f"{chosen.get('trades', float('nan')):.0f}",
            ]
        )
    if as_json:
        keep = ("params", "score", "objective", "total_return", "sharpe", "max_drawdown", "trades", "oos_total_return")
        click.echo(json.dumps(json_ready({s: {k: v for k, v in c.items() if k in keep} for s, c in out.items()})))
    else:
        what = "walk-forward (last window's choice, chained OOS return)" if walk_forward else method
        click.echo(f"{strategy.name}: best {objective} by {what}")
        click.echo(table(["Pair", "Params", objective, "Return", "Trades"], rows))


@main.command()
@STRATEGY_OPTION
@click.option("--symbol", required=True, help="One symbol.")
@TIMERANGE_OPTION
@INTERVAL_OPTION
@click.option("--params", "pairs", multiple=True, help="NAME=VALUE (repeatable); the strategy's defaults otherwise.")
@FEE_OPTION
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("plot.png"), show_default=True)
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="Also an interactive HTML (plotly).")
@FILE_OPTION
def plot(strategy_name, symbol, timerange, interval, pairs, fee, output, html, files) -> None:
    """A PNG of price with entries and exits, and the equity curve (optionally interactive HTML)."""
    from fks_pipelines.lib.quant.plot import plot_backtest
    from fks_pipelines.lib.quant.report import backtest_symbol

    check_output(output, "--output")  # both before anything is drawn: no PNG left behind when --html is bad
    if html:
        check_output(html, "--html")
    settings = Settings.from_env()
    strategy = _strategy(strategy_name, settings)
    params = _params(strategy, pairs)
    symbols = _symbols_option(symbol, settings)
    bars, interval = _bars(settings, symbols, interval, timerange, files)
    if symbols[0] not in bars:
        raise BadInputError(f"--symbol: no bars for {symbols[0]}")
    result = backtest_symbol(symbols[0], bars[symbols[0]], strategy, params, _config(interval, fee))
    written = plot_backtest(result, f"{strategy.name} {dict(params)} on {symbols[0]}", output, html)
    click.echo("wrote " + ", ".join(str(p) for p in written))


def stop_dagster_on_signals(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """On SIGINT/SIGTERM stop the whole process group: SIGTERM, then SIGKILL after ``grace_s``."""

    def stop(signum, _frame) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


# -- fks metrics / fks status --------------------------------------------------------------------------------
def _platform_snapshot_reader(settings: Settings):
    """A function returning a fresh snapshot (the database started on demand; the Dagster instance of the
    platform's DAGSTER_HOME)."""
    from dagster import DagsterInstance

    from fks_pipelines.monitoring import snapshot

    env = _apply_env(settings)
    instance: DagsterInstance | None
    try:
        instance = DagsterInstance.get()
    except Exception as exc:  # an unreadable dagster.yaml or storage: reported as the instance being down
        click.echo(f"warning: Dagster instance unavailable: {' '.join(str(exc).split())[:200]}", err=True)
        instance = None
    return lambda: snapshot(settings, env["FKS_DATABASE_URL"], instance)


@main.group(invoke_without_command=True)
@click.pass_context
def metrics(ctx: click.Context) -> None:
    """The platform's metrics in Prometheus text format (freshness, raw rows and gaps, ingest outcomes, checks,
    recommendations, LLM, embedding backlog, runs); `fks metrics serve` serves them for Prometheus."""
    if ctx.invoked_subcommand is None:
        from fks_pipelines.lib.metrics import prometheus_text

        click.echo(prometheus_text(_platform_snapshot_reader(Settings.from_env())()), nl=False)


@metrics.command("serve")
@click.option("--port", type=PORT, default=None, help="Port (default FKS_METRICS_PORT, 9464).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; another only inside a private network (the monitoring compose file).",
)
def metrics_serve(port: int | None, host: str) -> None:
    """Serve /metrics (127.0.0.1 by default) until interrupted; every scrape reads the platform afresh."""
    from prometheus_client import start_http_server

    from fks_pipelines.lib.metrics import registry_for
    from fks_pipelines.monitoring import wait_forever

    settings = Settings.from_env()
    port = port or settings.metrics_port
    registry = registry_for(_platform_snapshot_reader(settings))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise BadInputError(f"cannot serve metrics on {host}:{port}: {exc.strerror}", where="--port") from None
    click.echo(f"serving the platform's metrics on http://{host}:{port}/metrics (Ctrl-C stops)", err=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    wait_forever()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (items, states, overall) for scripts.")
def status(as_json: bool) -> None:
    """One screen: the database, each asset's latest partition and freshness, the last run, failing checks and
    the LLM, each ok/warn/fail. Exit code 0 whatever the states (read `overall` in --json)."""
    import json

    from fks_pipelines.lib.metrics import overall, status_rows

    snap = _platform_snapshot_reader(Settings.from_env())()
    rows = status_rows(snap)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "taken_at": snap.taken_at.isoformat(),
                    "overall": overall(rows),
                    "items": [{"item": r.item, "state": r.state, "detail": r.detail, **r.values} for r in rows],
                }
            )
        )
        return
    marks = {
        "ok": click.style("ok  ", fg="green"),
        "warn": click.style("warn", fg="yellow"),
        "fail": click.style("fail", fg="red"),
    }
    click.echo(f"fks status at {snap.taken_at:%Y-%m-%d %H:%M:%S} UTC: {overall(rows)}")
    width = max(len(r.item) for r in rows)
    for r in rows:
        click.echo(f"  {marks[r.state]}  {r.item:<{width}}  {r.detail}")


def run(args: list[str] | None = None) -> None:
    """Console entry point, the one place errors become exit codes. A usage error (a bad option value or
    argument) or a :class:`BadInputError` is one line on stderr and exit code 2; another :class:`FksError`
    (a database that will not start, a source that keeps failing) one line and exit code 1. Anything else
    is a bug and keeps its traceback."""
    try:
        code = main(args=args, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        _fail(exc.format_message(), 2)
    except ProjectError as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except BadInputError as exc:
        _fail(str(exc), 2)
    except FksError as exc:
        _fail(str(exc), 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo("Error: " + " ".join(message.split("\n")), err=True)
    sys.exit(code)


if __name__ == "__main__":
    run()

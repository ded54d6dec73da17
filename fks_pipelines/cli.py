"""``fks``: the platform's command line.

    fks db start|stop|status|url|psql|env   the embedded PostgreSQL (or the external one's URL)
    fks ingest sample|binance|archive       load raw klines through the same path as the Dagster asset
    fks demo                                the main job on the embedded default, end to end
    fks dev                                 the database + `dg dev`, stopped together

Everything that talks to a database resolves it the same way: ``FKS_DATABASE_URL`` if set (nothing embedded
is started), else the embedded server under ``$FKS_HOME``, started on demand.
"""

from __future__ import annotations

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
from fks_pipelines.lib.rag.documents import KINDS
from fks_pipelines.settings import PROJECT_ROOT, Settings

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
        from fks_pipelines.lib.sources.frame import interval_timedelta

        try:
            interval_timedelta(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return value


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
    """A project error (FksError) as click shows it: one line; exit 2 for bad input, 1 otherwise."""

    def __init__(self, exc: FksError):
        super().__init__(" ".join(str(exc).split("\n")))
        self.exit_code = 2 if isinstance(exc, BadInputError) else 1


class FksGroup(click.Group):
    """Turns the project's own errors into one-line click errors for every subcommand, so `fks`, `python -m
    fks_pipelines.cli` and click's test runner all show them the same way (real bugs keep their traceback)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FksError as exc:
            raise ProjectError(exc) from None


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
        from fks_pipelines.lib.db.connect import connect, redact

        with connect(settings.database_url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
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
def portfolio_import(file: Path) -> None:
    """Import FILE: YAML (accounts with cash and trades; each account in it is replaced) or CSV (trades added
    to existing accounts). Everything is validated first; on any error nothing is written."""
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.portfolio import account_states, import_accounts, import_trades
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
                trades = import_accounts(conn, ledger, settings.market)
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
def search(question: str, k: int, as_of: datetime | None, symbols: str | None, kinds: list[str] | None) -> None:
    """Semantic search over the knowledge layer, point-in-time: embeds QUESTION with the configured model and
    prints the nearest documents known by --as-of (the same knowledge.search analysts call in SQL)."""
    from fks_pipelines.lib.db.connect import connect
    from fks_pipelines.lib.db.knowledge import search as rag_search
    from fks_pipelines.lib.rag.embedder import Embedder

    settings = Settings.from_env()
    when = as_of or datetime.now(UTC)
    embedder = Embedder(settings.embedding_model, settings.embedding_model_path, settings.embedding_device)
    data_url, _ = database_urls(settings)
    split = lambda v: [x.strip() for x in v.split(",") if x.strip()] if v else None  # noqa: E731
    with connect(data_url) as conn:
        if conn.execute("SELECT to_regclass('knowledge.chunks')").fetchone()[0] is None:
            raise click.ClickException(
                "nothing is embedded yet: run `fks demo` or materialize knowledge/document_embeddings"
            )
        hits = rag_search(conn, embedder.encode([question])[0], k, as_of=when, symbols=split(symbols), kinds=kinds)
    click.echo(f'{len(hits)} documents known by {when:%Y-%m-%d %H:%M %Z} nearest to "{question}":')
    for hit in hits:
        click.echo(f"\n[{hit.distance:.3f}] {hit.kind} {hit.symbol or ''} as of {hit.as_of:%Y-%m-%d %H:%M}")
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
    from fks_pipelines.lib.db.raw import load_day, scope_summary
    from fks_pipelines.lib.sources.frame import LoadScope, check_closed, empty_klines

    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    if days:  # a day that has not ended: BadInputError before anything is fetched (exit 2)
        check_closed(
            empty_klines(),
            LoadScope.for_day(market, interval, symbols, days[-1].isoformat()),
            now=datetime.now(UTC),
        )
    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    summaries = {}
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

    Each file replaces exactly the day (or month) its name covers; a bad file is rejected with the reason
    and nothing of it is written; the other files still load.
    """
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.raw import replace_klines, scope_summary
    from fks_pipelines.lib.sources.files import read_kline_file

    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".zip", ".csv", ".json"))
        else:
            files.append(path)
    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    failures, summaries = 0, {}
    began = time.perf_counter()
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        for i, path in enumerate(files, start=1):
            try:
                parsed = read_kline_file(path, market=market, symbol=symbol, interval=interval)
                result = replace_klines(
                    conn,
                    parsed.frame,
                    parsed.scope,
                    source="file",
                    detail=str(path),
                    checksum=parsed.sha256,
                    force=force,
                )
            except FksError as exc:
                failures += 1
                click.echo(f"  [{i}/{len(files)}] REJECTED {exc}", err=True)
                continue
            click.echo(
                f"  [{i}/{len(files)}] {path.name}: {result.rows_loaded} rows ({parsed.scope.describe()})", err=True
            )
            for s in scope_summary(conn, parsed.scope, max_ranges=5):
                summaries.setdefault(f"{parsed.scope.market}:{s.symbol}:{parsed.scope.interval}", []).append(s)
    _print_summary(summaries, time.perf_counter() - began)
    if failures:
        raise click.ClickException(
            f"{failures} of {len(files)} file(s) rejected (see above); nothing of them was written"
        )


# -- fks demo / fks dev --------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--days", type=DAYS, default=30, show_default=True, help="Complete UTC days to materialize, ending yesterday."
)
def demo(days: int) -> None:
    """Run the main job on the embedded default (offline sample data) through Dagster, and print the result."""
    from fks_pipelines.demo import run_demo

    settings = Settings.from_env()
    first = datetime.now(UTC).date() - timedelta(days=days)
    if first < date.fromisoformat(settings.partitions_start):
        raise click.BadParameter(
            f"{days} reaches back to {first}, before the first partition"
            f" {settings.partitions_start} (FKS_PARTITIONS_START)",
            param_hint="'--days'",
        )
    env = _apply_env(settings)
    run_demo(days=days, env=env)


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
    click.echo("error: " + " ".join(message.split("\n")), err=True)
    sys.exit(code)


if __name__ == "__main__":
    run()

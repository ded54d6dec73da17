"""``fks``: the platform's command line.

    fks db start|stop|status|url|psql|env   the embedded PostgreSQL (or the external one's URL)
    fks ingest sample|binance|archive       load raw klines through the same path as the Dagster asset
    fks demo                                the main job on the embedded default, end to end
    fks dev                                 the database + `dagster dev`, stopped together

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
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click

from fks_pipelines.lib.errors import FksError
from fks_pipelines.settings import PROJECT_ROOT, Settings


# -- resolving the database ---------------------------------------------------------------------------------
def embedded_server(settings: Settings):
    from fks_pipelines.lib.db.embedded import EmbeddedPostgres

    return EmbeddedPostgres(settings.home, port=settings.pg_port, os_user=settings.pg_os_user, bin_path=settings.pg_bin_dir)


def database_urls(settings: Settings, *, start: bool = True) -> tuple[str, str]:
    """(data URL, Dagster storage URL). Starts the embedded server unless an external one is configured."""
    from fks_pipelines.lib.db.connect import with_database

    if settings.database_url:
        dagster_url = settings.dagster_database_url or with_database(settings.database_url, "dagster", driver="psycopg2")
        return settings.database_url, dagster_url
    server = embedded_server(settings)
    if start:
        server.start()
    # dagster-postgres on SQLAlchemy 2.1 needs the psycopg2 driver named explicitly.
    return server.url("fks"), settings.dagster_database_url or server.url("dagster", driver="psycopg2")


def platform_env(settings: Settings, *, start: bool = True) -> dict[str, str]:
    """The environment Dagster processes need: database URLs and a DAGSTER_HOME holding our dagster.yaml."""
    data_url, dagster_url = database_urls(settings, start=start)
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    source_yaml = PROJECT_ROOT / "dagster.yaml"
    target_yaml = dagster_home / "dagster.yaml"
    if source_yaml.exists() and (not target_yaml.exists() or target_yaml.read_text() != source_yaml.read_text()):
        shutil.copyfile(source_yaml, target_yaml)
    from fks_pipelines.lib.db.connect import dbt_profile_env

    return {
        "FKS_DATABASE_URL": data_url,
        "FKS_DAGSTER_DATABASE_URL": dagster_url,
        "DAGSTER_HOME": str(dagster_home),
        "FKS_HOME": str(settings.home),
        # For dbt run by hand in dbt_project/ (Dagster's dbt assets derive these from the database resource).
        **dbt_profile_env(data_url),
    }


def _apply_env(settings: Settings) -> dict[str, str]:
    env = platform_env(settings)
    os.environ.update(env)
    return env


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--database", default="fks", show_default=True, help="fks (the data) or dagster (Dagster's storage).")
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
    """Create (once) a login for the read-only analyst role and print its URL: SELECT on the marts, nothing else."""
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.roles import ANALYST, enable_analyst_login, stored_password, url_for_role

    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    password = stored_password(settings.home / "secrets" / f"{ANALYST}.password")
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        enable_analyst_login(conn, password)
    click.echo(url_for_role(data_url, ANALYST, password))


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

    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        existing = {a for (a,) in conn.execute("SELECT account FROM portfolio.accounts").fetchall()}
        try:
            ledger = read_ledger(file, set(settings.symbols), existing)
            if isinstance(ledger, list):
                trades = import_accounts(conn, ledger, settings.market)
                click.echo(f"imported {len(ledger)} account(s), {trades} trade(s) from {file}")
            else:
                trades = import_trades(conn, ledger, str(file))
                click.echo(f"added {trades} trade(s) to {len(ledger)} account(s) from {file}")
        except BadInputError as e:
            raise click.ClickException(f"{e} (nothing was written)") from None
        for state in account_states(conn, datetime.now(timezone.utc)):
            held = ", ".join(f"{q:g} {s}" for s, q in state.positions.items()) or "no positions"
            click.echo(f"  {state.account:<20} {state.kind:<10} cash {state.cash:,.2f} USDT, {held}")


@main.command()
@click.argument("question")
@click.option("-k", default=5, show_default=True, help="How many documents.")
@click.option("--as-of", help="Only what was known by then (ISO time, UTC when no offset; default: now).")
@click.option("--symbols", help="Comma-separated symbols to restrict to.")
@click.option("--kinds", help="Comma-separated document kinds (market_summary, signal_event, strategy_summary).")
def search(question: str, k: int, as_of: str | None, symbols: str | None, kinds: str | None) -> None:
    """Semantic search over the knowledge layer, point-in-time: embeds QUESTION with the configured model and
    prints the nearest documents known by --as-of (the same knowledge.search analysts call in SQL)."""
    from fks_pipelines.lib.db.connect import connect
    from fks_pipelines.lib.db.knowledge import search as rag_search
    from fks_pipelines.lib.rag.embedder import Embedder

    settings = Settings.from_env()
    when = datetime.fromisoformat(as_of) if as_of else datetime.now(timezone.utc)
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    embedder = Embedder(settings.embedding_model, settings.embedding_model_path, settings.embedding_device)
    data_url, _ = database_urls(settings)
    split = lambda v: [x.strip() for x in v.split(",") if x.strip()] if v else None  # noqa: E731
    with connect(data_url) as conn:
        if conn.execute("SELECT to_regclass('knowledge.chunks')").fetchone()[0] is None:
            raise click.ClickException("nothing is embedded yet: run `fks demo` or materialize knowledge/document_embeddings")
        hits = rag_search(conn, embedder.encode([question])[0], k, as_of=when, symbols=split(symbols), kinds=split(kinds))
    click.echo(f'{len(hits)} documents known by {when:%Y-%m-%d %H:%M %Z} nearest to "{question}":')
    for hit in hits:
        click.echo(f"\n[{hit.distance:.3f}] {hit.kind} {hit.symbol or ''} as of {hit.as_of:%Y-%m-%d %H:%M}")
        click.echo("  " + hit.text.replace("\n", "\n  "))


@main.command()
@click.option("--port", default=8080, show_default=True, help="Port on 127.0.0.1.")
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
def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2024-01-31") from None


def _symbols_option(value: str | None, settings: Settings) -> list[str]:
    return [s.strip().upper() for s in value.split(",")] if value else list(settings.symbols)


def _load_days(source, market: str, interval: str, symbols: list[str], start: date, end: date) -> None:
    """Load each day [start, end] through the asset's load path, with progress and a final summary."""
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.klines import replace_klines, scope_summary
    from fks_pipelines.lib.sources.klines import LoadScope

    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    summaries = {}
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        began = time.perf_counter()
        for i, day in enumerate(days, start=1):
            batch = source.fetch_day(market, symbols, interval, day)
            scope = LoadScope.for_day(market, interval, symbols, day.isoformat())
            result = replace_klines(conn, batch.frame, scope, source=source.name, detail=batch.detail, checksum=batch.checksum)
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
@click.option("--days", default=30, show_default=True, help="How many complete UTC days, ending yesterday.")
@click.option("--symbols", help="Comma-separated (default: FKS_SYMBOLS / the configured universe).")
@click.option("--seed", default=None, type=int, help="Generator seed (default FKS_SAMPLE_SEED or 42).")
@click.option("--gap-rate", default=0.0, show_default=True, help="Share of minutes to leave out, in short runs.")
def ingest_sample(days: int, symbols: str | None, seed: int | None, gap_rate: float) -> None:
    """Generate the deterministic offline sample (no network) and load it."""
    from fks_pipelines.lib.sources import SampleSource

    settings = Settings.from_env()
    end = datetime.now(timezone.utc).date() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    source = SampleSource(seed=settings.sample_seed if seed is None else seed, gap_rate=gap_rate)
    _load_days(source, "spot", "1m", _symbols_option(symbols, settings), start, end)


@ingest.command("binance")
@click.option("--symbols", help="Comma-separated, e.g. BTCUSDT,ETHUSDT (default: the configured universe).")
@click.option("--interval", default="1m", show_default=True)
@click.option("--market", type=click.Choice(["spot", "usdm"]), default="spot", show_default=True)
@click.option("--start", "start_", required=True, help="First UTC day, e.g. 2024-01-01.")
@click.option("--end", required=True, help="Last UTC day (inclusive), e.g. 2024-01-31.")
def ingest_binance(symbols: str | None, interval: str, market: str, start_: str, end: str) -> None:
    """Fetch klines from Binance's REST API (rate-limit aware) and load them, one UTC day at a time."""
    from fks_pipelines.lib.sources import build_source

    settings = Settings.from_env()
    pages = {"n": 0}

    def on_page(symbol: str, rows: int) -> None:
        pages["n"] += 1
        click.echo(f"    {symbol}: page {pages['n']} ({rows} bars)", err=True)

    source = build_source("binance_rest", rest_base_url=settings.rest_base_url, on_page=on_page)
    _load_days(source, market, interval, _symbols_option(symbols, settings), _parse_day(start_), _parse_day(end))


@ingest.command("archive")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--market", type=click.Choice(["spot", "usdm", "coinm"]), help="Override the market read from the path.")
@click.option("--symbol", help="Symbol, for files whose name does not say it (REST JSON dumps).")
@click.option("--interval", help="Interval, for files whose name does not say it.")
def ingest_archive(paths: tuple[Path, ...], market: str | None, symbol: str | None, interval: str | None) -> None:
    """Load data.binance.vision files (.zip/.csv, .CHECKSUM verified when present) or REST JSON dumps.

    Each file replaces exactly the day (or month) its name covers; a bad file is rejected with the reason
    and nothing of it is written; the other files still load.
    """
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.db.klines import replace_klines, scope_summary
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
                result = replace_klines(conn, parsed.frame, parsed.scope, source="file", detail=str(path), checksum=parsed.sha256)
            except FksError as exc:
                failures += 1
                click.echo(f"  [{i}/{len(files)}] REJECTED {exc}", err=True)
                continue
            click.echo(f"  [{i}/{len(files)}] {path.name}: {result.rows_loaded} rows ({parsed.scope.describe()})", err=True)
            for s in scope_summary(conn, parsed.scope, max_ranges=5):
                summaries.setdefault(f"{parsed.scope.market}:{s.symbol}:{parsed.scope.interval}", []).append(s)
    _print_summary(summaries, time.perf_counter() - began)
    if failures:
        raise click.ClickException(f"{failures} of {len(files)} file(s) rejected (see above); nothing of them was written")


# -- fks demo / fks dev --------------------------------------------------------------------------------------
@main.command()
@click.option("--days", default=30, show_default=True, help="Complete UTC days to materialize, ending yesterday.")
def demo(days: int) -> None:
    """Run the main job on the embedded default (offline sample data) through Dagster, and print the result."""
    from fks_pipelines.demo import run_demo

    env = _apply_env(Settings.from_env())
    run_demo(days=days, env=env)


@main.command()
@click.option("--port", default=3000, show_default=True, help="Dagster webserver port (127.0.0.1).")
def dev(port: int) -> None:
    """Start the database and `dagster dev` (UI on 127.0.0.1); Ctrl-C stops Dagster and all its children."""
    env = dict(os.environ, **_apply_env(Settings.from_env()))
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    # Its own process group, so one signal reaches the webserver, the daemon and the code server: `dagster dev`
    # started without job control ignores SIGINT/SIGTERM sent to it alone.
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, start_new_session=True)
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


def run() -> None:
    """Console entry point: FksError becomes a one-line message and exit code 1, not a traceback."""
    try:
        main(standalone_mode=True)
    except FksError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()

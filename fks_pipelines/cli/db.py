"""`fks db`: the platform database, the embedded PostgreSQL under $FKS_HOME or FKS_DATABASE_URL's server."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import click

from fks_pipelines.cli.env import apply_env
from fks_pipelines.cli.options import database_option, force_option
from fks_pipelines.lib.db.platform import database_urls, embedded_server
from fks_pipelines.settings import Settings


@click.group()
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
        from fks_pipelines.lib.db.catalog import available_extensions, server_version
        from fks_pipelines.lib.db.connect import connect, redact

        with connect(settings.database_url) as conn:
            version, extensions = server_version(conn), available_extensions(conn)
        click.echo(f"external PostgreSQL {version} at {redact(settings.database_url)}")
        click.echo(f"  extensions available: {', '.join(extensions)}")
        return
    click.echo(embedded_server(settings).status().describe())


@db.command("url")
@database_option
def db_url(database: str) -> None:
    """Print a libpq URL (with password) for psql, DBeaver or a notebook: psql "$(fks db url)"."""
    settings = Settings.from_env()
    if settings.database_url:
        from fks_pipelines.lib.db.connect import with_database

        click.echo(with_database(settings.database_url, database))
        return
    click.echo(embedded_server(settings).url(database))


@db.command("env")
def db_env() -> None:
    """Print shell exports for running Dagster or dbt by hand: eval "$(fks db env)"; dagster dev -w workspace.yaml."""
    for key, value in apply_env(Settings.from_env()).items():
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


def _database_url(settings: Settings, database: str) -> str:
    """The libpq URL of the data or Dagster database (FKS_DATABASE_URL's server, or the embedded one started)."""
    data_url, dagster_url = database_urls(settings)
    return data_url if database == "fks" else dagster_url.replace("postgresql+psycopg2://", "postgresql://", 1)


@db.command("backup")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@database_option
def db_backup(output: Path, database: str) -> None:
    """Dump a database (embedded or FKS_DATABASE_URL's) into OUTPUT with pg_dump (custom format)."""
    from fks_pipelines.lib.db.backup import backup

    written = backup(_database_url(Settings.from_env(), database), output)
    click.echo(f"{database}: backed up to {written} ({written.stat().st_size:,} bytes)")


@db.command("restore")
@click.argument("dump", type=click.Path(path_type=Path))
@database_option
@force_option("Restore even when the database holds runs, accounts, trades or loads the dump lacks.")
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

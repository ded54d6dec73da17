"""The platform as a whole: `fks demo` (the main job end to end), `fks backfill` (every asset over days, as a
Dagster backfill), `fks dev` (the database and the Dagster UI) and `fks docs` (dbt's documentation site)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import click

from fks_pipelines.cli.env import apply_env
from fks_pipelines.cli.options import day_range_options, json_option, symbols_option
from fks_pipelines.cli.types import DAYS, PORT
from fks_pipelines.lib.db.platform import database_urls
from fks_pipelines.settings import PROJECT_ROOT, Settings


@click.command()
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
    from fks_pipelines.demo import prepare_demo, run_demo

    window = prepare_demo(Settings.from_env(recorded=False), days, sample)  # as exported: an exported variable wins
    env = apply_env(Settings.from_env())  # with what the demo recorded
    run_demo(
        first=window.first, opened=window.opened, last=window.last, env=env, partitions_start=window.partitions_start
    )


@click.command()
@day_range_options("First UTC day, e.g. 2021-01-01.", "Last UTC day (inclusive).")
@symbols_option()
@json_option("One JSON object at the end: backfill id, status, steps.")
def backfill(start_: date, end: date, symbols: list[str] | None, as_json: bool) -> None:
    """A Dagster asset backfill of every asset over the days [--start, --end], on the UI's backfill page; the
    same arguments again resume an unfinished one. Without `fks dev`'s daemon, this process drives it."""
    from fks_pipelines.runs import backfill_every_asset

    settings = Settings.from_env()  # with what the home recorded (a demo's data), as `fks dev` serves it
    if start_ < date.fromisoformat(settings.partitions_start):
        raise click.BadParameter(
            f"{start_} is before the first partition {settings.partitions_start} (FKS_PARTITIONS_START)",
            param_hint="'--start'",
        )
    chosen = symbols or list(settings.symbols)
    env = apply_env(settings)
    env["FKS_SYMBOLS"] = ",".join(chosen)  # the run's universe, for the code location and the runs it starts
    os.environ.update(env)
    steps: list[str] = []

    def on_step(line: str) -> None:
        steps.append(line)
        click.echo(f"  [{len(steps)}] {line}", err=True)

    def on_submitted(backfill_id: str) -> None:
        click.echo(f"fks backfill {backfill_id}: {start_} .. {end}, {', '.join(chosen)}", err=True)

    backfill_id, status = backfill_every_asset(start_, end, chosen, on_step, on_submitted)
    if as_json:
        click.echo(json.dumps({"backfill_id": backfill_id, "status": status, "steps": steps}))
    else:
        click.echo(f"backfill {backfill_id}: {status} ({len(steps)} steps)")
    if status not in ("COMPLETED", "COMPLETED_SUCCESS"):
        raise SystemExit(1)


@click.command()
@click.option("--port", type=PORT, default=3000, show_default=True, help="Dagster webserver port (127.0.0.1).")
def dev(port: int) -> None:
    """Start the database and `dg dev` (UI on 127.0.0.1); Ctrl-C stops Dagster and all its children."""
    env = dict(os.environ, **apply_env(Settings.from_env()))
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


@click.command()
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

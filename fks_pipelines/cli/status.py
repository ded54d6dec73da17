"""`fks metrics` (Prometheus text, or served) and `fks status` (one screen): the platform's state read afresh
from the database's stores and the Dagster instance (fks_pipelines.monitoring)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from fks_pipelines.cli.env import apply_env
from fks_pipelines.cli.options import json_option
from fks_pipelines.cli.types import PORT
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.settings import Settings

if TYPE_CHECKING:
    from fks_pipelines.lib.metrics import PlatformSnapshot


def _snapshot_reader(settings: Settings) -> Callable[[], PlatformSnapshot]:
    """A function returning a fresh snapshot (the database started on demand; the Dagster instance of the
    platform's DAGSTER_HOME)."""
    from dagster import DagsterInstance

    from fks_pipelines.monitoring import snapshot

    env = apply_env(settings)
    instance: DagsterInstance | None
    try:
        instance = DagsterInstance.get()
    except Exception as exc:  # an unreadable dagster.yaml or storage: reported as the instance being down
        click.echo(f"warning: Dagster instance unavailable: {' '.join(str(exc).split())[:200]}", err=True)
        instance = None
    return lambda: snapshot(settings, env["FKS_DATABASE_URL"], instance)


@click.group(invoke_without_command=True)
@click.pass_context
def metrics(ctx: click.Context) -> None:
    """The platform's metrics in Prometheus text format (freshness, raw rows and gaps, ingest outcomes, checks,
    recommendations, LLM, embedding backlog, runs); `fks metrics serve` serves them for Prometheus."""
    if ctx.invoked_subcommand is None:
        from fks_pipelines.lib.metrics import prometheus_text

        click.echo(prometheus_text(_snapshot_reader(Settings.from_env())()), nl=False)


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
    registry = registry_for(_snapshot_reader(settings))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise BadInputError(f"cannot serve metrics on {host}:{port}: {exc.strerror}", where="--port") from None
    click.echo(f"serving the platform's metrics on http://{host}:{port}/metrics (Ctrl-C stops)", err=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    wait_forever()


@click.command()
@json_option("One JSON object (items, states, overall) for scripts.")
def status(as_json: bool) -> None:
    """One screen: the database, each asset's latest partition and freshness, the last run, failing checks and
    the LLM, each ok/warn/fail. Exit code 0 whatever the states (read `overall` in --json)."""
    from fks_pipelines.lib.metrics import overall, status_rows

    snap = _snapshot_reader(Settings.from_env())()
    rows = status_rows(snap)
    if as_json:
        items = [{"item": r.item, "state": r.state, "detail": r.detail, **r.values} for r in rows]
        click.echo(json.dumps({"taken_at": snap.taken_at.isoformat(), "overall": overall(rows), "items": items}))
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

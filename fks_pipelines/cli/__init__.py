"""``fks``: the platform's command line, one module per command group, each thin over ``lib/``.

    fks db start|stop|status|url|psql|env   the embedded PostgreSQL (or the external one's URL)     cli/db.py
    fks db backup FILE | restore FILE       pg_dump / pg_restore of the data (or Dagster's) database
    fks db analyst-url                      a read-only login on the marts
    fks portfolio import FILE               accounts, cash and trades                               cli/portfolio.py
    fks ingest sample|binance|archive|freqtrade   raw klines through the Dagster asset's load path   cli/ingest.py
    fks backtest|hyperopt|lookahead-analysis|plot   one strategy (built-in or FKS_STRATEGIES_DIR)   cli/strategy.py
    fks search QUESTION                     the knowledge layer's point-in-time hybrid search      cli/search.py
    fks explain ACCOUNT [--date D]          a decision in text and pictures (PNG files)            cli/explain.py
    fks demo | backfill | dev | docs        the main job end to end; a Dagster backfill; the UI;   cli/platform.py
                                            dbt's documentation site
    fks metrics [serve] | status [--json]   the platform's state, for Prometheus or a person       cli/status.py

Shared options are declared once in cli/options.py, their types in cli/types.py, and errors become exit codes in
one place, cli/errors.py. Everything that talks to a database resolves it the same way: ``FKS_DATABASE_URL`` if
set (nothing embedded is started), else the embedded server under ``$FKS_HOME``, started on demand.
"""

from __future__ import annotations

import click

from fks_pipelines.cli.db import db
from fks_pipelines.cli.errors import FksGroup
from fks_pipelines.cli.explain import explain
from fks_pipelines.cli.ingest import ingest
from fks_pipelines.cli.platform import backfill, demo, dev, docs
from fks_pipelines.cli.portfolio import portfolio
from fks_pipelines.cli.search import search
from fks_pipelines.cli.status import metrics, status
from fks_pipelines.cli.strategy import backtest, hyperopt, lookahead_analysis, plot


@click.group(cls=FksGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """fks_pipelines: crypto market data -> dbt marts -> backtests -> embeddings -> daily recommendation."""


GROUPS = (
    db,
    portfolio,
    ingest,
    backtest,
    hyperopt,
    lookahead_analysis,
    plot,
    search,
    explain,
    demo,
    backfill,
    dev,
    docs,
    metrics,
    status,
)
for command in GROUPS:
    main.add_command(command)


def run(args: list[str] | None = None) -> None:
    """The console entry point (`fks`, pyproject's [project.scripts]); exit codes as cli/errors.py says."""
    main.main(args=args, prog_name="fks")


__all__ = ["main", "run"]

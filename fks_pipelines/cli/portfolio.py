"""`fks portfolio`: the ledger the recommendations are sized for (accounts, cash and trades)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from fks_pipelines.lib.db.platform import database_urls
from fks_pipelines.lib.errors import BadInputError, FksError
from fks_pipelines.settings import Settings


@click.group()
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
    from fks_pipelines.lib.db.portfolio import (
        account_names,
        account_states,
        import_accounts,
        import_trades,
        plan_import,
    )
    from fks_pipelines.lib.portfolio.ledger import read_ledger

    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        try:
            ledger = read_ledger(file, set(settings.symbols), account_names(conn), settings.portfolio_max_bytes)
            if isinstance(ledger, list):
                plan = plan_import(conn, ledger, reset_paper)
                losing = [step for step in plan if step.loses()]
                if losing and not yes and not sys.stdin.isatty():
                    lost = "; ".join(step.describe() for step in losing)
                    raise BadInputError(f"{lost}: confirm with --yes", where=str(file))
                for step in plan:
                    click.echo(f"  {step.describe()}")
                if losing and not yes and not click.confirm("Delete what the file does not contain?", default=False):
                    raise FksError("not confirmed: nothing was written")
                trades = import_accounts(conn, ledger, settings.market, reset_paper, confirmed=plan)
                click.echo(f"imported {len(ledger)} account(s), {trades} trade(s) from {file}")
            else:
                trades = import_trades(conn, ledger, str(file))
                click.echo(f"added {trades} trade(s) to {len(ledger)} account(s) from {file}")
        except BadInputError as e:
            raise BadInputError(f"{e} (nothing was written)") from None
        for state in account_states(conn, datetime.now(UTC)):
            held = ", ".join(f"{q:g} {s}" for s, q in state.positions.items()) or "no positions"
            click.echo(f"  {state.account:<20} {state.kind:<10} cash {state.cash:,.2f} USDT, {held}")

"""Options shared by several commands, each declared once: the same name, type and meaning wherever it appears."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from fks_pipelines.cli.types import Day, Interval, Symbols

F = Callable[..., Any]


def symbols_option(help: str = "Comma-separated symbols (default: FKS_SYMBOLS, the configured universe).") -> F:
    """--symbols: a list checked by the one symbol rule while the options are parsed (a bad one: exit 2, before
    anything starts); ``None`` or ``[]`` when not given."""
    return click.option("--symbols", type=Symbols(), help=help)


def json_option(help: str) -> F:
    """--json: the command's result as JSON on stdout, for scripts (``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def force_option(
    help: str = "Replace a day even with fewer bars than it holds (refused otherwise, exit 1).",
) -> F:
    """--force: do what a guard refuses by default (the guard names what would be lost)."""
    return click.option("--force", is_flag=True, help=help)


database_option = click.option(
    "--database",
    type=click.Choice(["fks", "dagster"]),
    default="fks",
    show_default=True,
    help="fks (the data) or dagster (Dagster's storage).",
)


def day_range_options(start_help: str, end_help: str) -> Callable[[F], F]:
    """--start and --end (required UTC days, passed as ``start_`` and ``end``), checked together before the
    command runs: at least one day, none of them still to come."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def checked(*args: Any, start_: date, end: date, **kwargs: Any) -> Any:
            check_day_range(start_, end)
            return command(*args, start_=start_, end=end, **kwargs)

        with_end = click.option("--end", type=Day(), required=True, help=end_help)(checked)
        return click.option("--start", "start_", type=Day(), required=True, help=start_help)(with_end)

    return decorate


def check_day_range(start: date, end: date) -> None:
    today = datetime.now(UTC).date()
    if end < start:
        raise click.BadParameter(f"{end} is before --start {start}", param_hint="'--end'")
    if end > today:
        raise click.BadParameter(f"{end} is after today ({today}, UTC)", param_hint="'--end'")


# -- the strategy commands (backtest, hyperopt, lookahead-analysis, plot) ---------------------------------------
strategy_option = click.option(
    "--strategy", "strategy_name", required=True, help="A built-in or a strategy file's name."
)
timerange_option = click.option(
    "--timerange", help="START-END as YYYYMMDD-YYYYMMDD (UTC days, END exclusive); either side may be empty."
)
interval_option = click.option(
    "--interval", type=Interval(), help="Bar length: 1h or 1d from the marts (default 1h); --file: the file's."
)
fee_option = click.option(
    "--fee", type=click.FloatRange(0, 0.1), default=0.001, show_default=True, help="Per fill (0.001 = 0.1%)."
)
params_option = click.option(
    "--params", "pairs", multiple=True, help="NAME=VALUE (repeatable); the strategy's defaults otherwise."
)
file_option = click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Binance kline files (archive CSV/zip, REST JSON) to backtest instead of the database; repeatable.",
)

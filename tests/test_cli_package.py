"""The `fks` command's shape (issue 23): every --symbols is the one shared option (one type, checked by the one
symbol rule while parsing); every error reaches its exit code through cli/errors.py, under click's test runner as
from a shell; no command module (nor the demo and runs modules they call) holds SQL: it lives in the stores."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import fks_pipelines.cli
from fks_pipelines.cli import main
from fks_pipelines.cli.errors import as_click_error, exit_code
from fks_pipelines.cli.types import Symbols
from fks_pipelines.lib.errors import BadInputError, DatabaseError, RefusedLoadError
from fks_pipelines.lib.quant.inputs import parse_params, parse_timerange
from fks_pipelines.lib.quant.strategy_files import load_strategies

CLI_DIR = Path(fks_pipelines.cli.__file__).parent


def commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_every_symbols_option_is_the_shared_one():
    found = {
        " ".join(path): param
        for path, command in commands(main)
        for param in command.params
        if "--symbols" in param.opts
    }
    assert {"ingest sample", "ingest binance", "ingest freqtrade", "backtest", "hyperopt", "search"} <= set(found)
    assert all(isinstance(p.type, Symbols) for p in found.values()), found


def test_no_command_module_holds_sql():
    statement = re.compile(r"\.execute\(|\bSELECT\b.*\bFROM\b|\bINSERT INTO\b|\bDELETE FROM\b|\bSHOW \w+_\w+\b")
    modules = [*CLI_DIR.glob("*.py"), CLI_DIR.parent / "demo.py", CLI_DIR.parent / "runs.py"]  # what commands run
    offenders = {p.name: statement.findall(p.read_text()) for p in modules}
    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize(
    ("exc", "code"),
    [(BadInputError("x", where="f.csv", row=3), 2), (RefusedLoadError("x"), 1), (DatabaseError("x"), 1)],
)
def test_project_errors_map_to_one_exit_code_each(exc, code):
    error = as_click_error(exc)
    assert exit_code(exc) == code and error.exit_code == code
    assert "\n" not in error.format_message()


def test_a_bad_symbol_is_refused_while_parsing_in_one_line():
    result = CliRunner().invoke(main, ["backtest", "--strategy", "nope", "--symbols", "BTC USDT"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: --symbols: invalid symbol 'BTC USDT'")


def test_a_usage_error_is_one_line_under_the_test_runner_too():
    result = CliRunner().invoke(main, ["ingest", "binance", "--start", "2024-01-02", "--end", "2024-01-01"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: Invalid value for '--end': 2024-01-01 is before --start 2024-01-02"


def test_timerange_and_params_are_parsed_with_the_option_named():
    start, end = parse_timerange("20240101-")
    assert (start.isoformat(), end) == ("2024-01-01T00:00:00+00:00", None)
    with pytest.raises(BadInputError, match="^--timerange: '20240301-20240101' ends before it starts$"):
        parse_timerange("20240301-20240101")
    strategy = next(s for s in load_strategies().values() if any(type(v[0]) is int for v in s.grid.values()))
    name = next(k for k, v in strategy.grid.items() if type(v[0]) is int)
    with pytest.raises(BadInputError, match=f"^--params: {name}='1.5' is not an integer$"):
        parse_params(strategy, [f"{name}=1.5"])

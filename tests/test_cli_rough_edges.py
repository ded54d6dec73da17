"""Rough edges of the `fks` command: --params typed like the strategy's GRID (False is false, NaN is refused, the
message in English), output paths checked before anything is computed or written (one line, exit 2, nothing
written), --symbols of `fks search` by the one symbol rule, one error prefix, and one Definitions object at module
level (so `dagster ... -m fks_pipelines.definitions` needs no `-a`)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from dagster._core.workspace.autodiscovery import loadable_targets_from_loaded_module

from fks_pipelines.cli import main

FKS = [sys.executable, "-m", "fks_pipelines.cli"]
FLAGGED = """
import numpy as np

GRID = {"window": [5, 10], "long_only": [True, False]}
DEFAULTS = {"window": 5, "long_only": True}


def signals(bars, window, long_only):
    close = bars["close"].to_numpy()
    return np.zeros(len(close), dtype=bool), np.zeros(len(close), dtype=bool)
"""


@pytest.fixture
def strategies(tmp_path, shared_data):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "flagged.py").write_text(FLAGGED)
    files = ["--file", str(shared_data / "spot" / "BTCUSDT-1m-2020-01-01.zip")]
    return files, {"FKS_STRATEGIES_DIR": str(folder), "FKS_SWEEP_WORKERS": "1"}


def fks(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize(("raw", "value"), [("False", False), ("0", False), ("no", False), ("TRUE", True), ("1", True)])
def test_a_bool_parameter_is_read_as_written(strategies, raw, value):
    files, env = strategies
    result = fks(["backtest", "--strategy", "flagged", "--json", "--params", f"long_only={raw}", *files], env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["params"]["long_only"] is value


@pytest.mark.parametrize(
    ("strategy", "pair", "message"),
    [
        ("bollinger_breakout", "k=nan", "--params: k='nan' is not a finite number"),
        ("bollinger_breakout", "k=inf", "--params: k='inf' is not a finite number"),
        ("bollinger_breakout", "window=x", "--params: window='x' is not an integer"),
        ("flagged", "long_only=maybe", "--params: long_only='maybe' is not true or false"),
    ],
)
def test_bad_parameter_values_are_refused_in_english(strategies, strategy, pair, message):
    files, env = strategies
    assert one_line(fks(["backtest", "--strategy", strategy, "--params", pair, *files], env)) == f"Error: {message}"


@pytest.mark.parametrize(
    "args",
    [
        ["backtest", "--strategy", "ma_cross", "--export", "{tmp}/nonexistent/d/t.json"],
        ["plot", "--strategy", "ma_cross", "--symbol", "BTCUSDT", "--output", "{tmp}/nonexistent/d/p.png"],
        [
            "plot",
            "--strategy",
            "ma_cross",
            "--symbol",
            "BTCUSDT",
            "--output",
            "{tmp}/p.png",
            "--html",
            "{tmp}/no/x.html",
        ],
        ["plot", "--strategy", "ma_cross", "--symbol", "BTCUSDT", "--output", "/etc/passwd/p.png"],
    ],
)
def test_an_output_path_that_cannot_be_written_is_one_line_and_nothing_is_written(strategies, tmp_path, args):
    files, env = strategies
    before = sorted(tmp_path.rglob("*"))
    line = one_line(fks([a.format(tmp=tmp_path) for a in args] + files, env))
    assert "cannot write" in line and ("--export" in line or "--output" in line or "--html" in line)
    assert sorted(tmp_path.rglob("*")) == before  # no PNG left behind by a bad --html


def test_search_symbols_follow_the_one_symbol_rule_and_errors_have_one_prefix():
    done = subprocess.run([*FKS, "search", "anything", "--symbols", "x'y"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().startswith("Error: --symbols: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "X'Y" in done.stderr


@pytest.mark.slow  # builds every layer's definitions (dbt manifest, Dagster): seconds of CPU
def test_the_definitions_module_has_one_definitions_object():
    module = importlib.import_module("fks_pipelines.definitions")
    assert [t.attribute for t in loadable_targets_from_loaded_module(module)] == ["defs"]

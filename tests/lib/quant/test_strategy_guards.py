"""A user strategy cannot take the platform down: a file that exits at import, a `signals` that raises, exits or
runs too long, and a GRID too large are each refused in one line naming the file, while the other strategies (the
built-ins included) keep working; user files are read only from FKS_STRATEGIES_DIR, never the working directory
by default."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fks_pipelines.cli import main
from fks_pipelines.lib.quant.strategy_files import load_strategies
from fks_pipelines.settings import Settings

NOTHING = """
import numpy as np

GRID = {"window": [5, 10]}


def signals(bars, window):
    {body}
    n = len(bars["close"])
    return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
"""


@pytest.fixture
def folder(tmp_path, shared_data):
    path = tmp_path / "strategies"
    path.mkdir()
    (path / "exits_at_import.py").write_text("import sys\nsys.exit(3)\n")
    (path / "raises.py").write_text(NOTHING.replace("{body}", "raise RuntimeError('boom')"))
    (path / "exits.py").write_text(NOTHING.replace("{body}", "raise SystemExit(4)"))
    (path / "sleeps.py").write_text(NOTHING.replace("{body}", "import time; time.sleep(600)"))
    (path / "huge.py").write_text(
        NOTHING.replace("{body}", "pass")
        .replace('{"window": [5, 10]}', '{"window": range(1000), "k": range(1000)}')
        .replace("def signals(bars, window):", "def signals(bars, window, k):")
    )
    (path / "fine.py").write_text(NOTHING.replace("{body}", "pass"))
    files = ["--file", str(shared_data / "spot" / "BTCUSDT-1m-2020-01-01.zip")]
    return path, files


def backtest(name: str, folder, files, **env: str):
    environment = {"FKS_STRATEGIES_DIR": str(folder), "FKS_SWEEP_WORKERS": "1", **env}
    return CliRunner().invoke(main, ["backtest", "--strategy", name, *files], env=environment, catch_exceptions=False)


def test_the_builtins_and_the_good_files_work_beside_the_bad_ones(folder):
    path, files = folder
    for name in ("ma_cross", "fine"):
        result = backtest(name, path, files)
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("exits_at_import", "exits_at_import.py: does not import: it called sys.exit(3)"),
        ("raises", "raises.py: signals({'window': 5}) raised RuntimeError: boom"),
        ("exits", "exits.py: signals({'window': 5}) called sys.exit(4)"),
        ("sleeps", "sleeps.py: signals({'window': 5}) ran past 0.5 s (FKS_STRATEGY_TIMEOUT) and was stopped"),
        ("huge", "huge.py: GRID has 1,000,000 combinations: at most 10,000 (FKS_STRATEGY_MAX_GRID)"),
    ],
)
def test_a_bad_strategy_is_one_line_naming_it(folder, name, message):
    path, files = folder
    result = backtest(name, path, files, FKS_STRATEGY_TIMEOUT="0.5")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0] == f"Error: {path / message}"


def test_user_strategies_are_not_read_from_the_working_directory_by_default(tmp_path, monkeypatch):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "here.py").write_text(NOTHING.replace("{body}", "pass"))
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env().strategies_dir is None
    strategies = load_strategies(Settings.from_env().strategies_dir)
    assert strategies.errors == {} and "here" not in strategies and "ma_cross" in strategies

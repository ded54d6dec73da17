"""`fks backtest`, `hyperopt`, `lookahead-analysis` and `plot` on a user's strategy file and the built-ins, on
real Binance 1-minute bars (--file), through the same code the assets use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fks_pipelines.cli import main
from tests.lib.quant.test_strategy_files import EXAMPLES, PEEKING

FKS = [sys.executable, "-m", "fks_pipelines.cli"]


@pytest.fixture
def setup(tmp_path, shared_data):
    folder = tmp_path / "strategies"
    folder.mkdir()
    for example in EXAMPLES.glob("*.py"):
        shutil.copy(example, folder / example.name)
    (folder / "peeking.py").write_text(PEEKING)
    (folder / "broken.py").write_text("GRID = {'a': [1]}\n")
    files = ["--file", str(shared_data / "spot" / "BTCUSDT-1m-2020-01-01.zip")]
    env = {"FKS_STRATEGIES_DIR": str(folder), "FKS_SWEEP_WORKERS": "1"}
    return folder, files, env


def fks(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_backtest_json_has_the_metrics_and_trades(setup, tmp_path):
    _, files, env = setup
    export = tmp_path / "trades.json"
    result = fks(["backtest", "--strategy", "donchian_breakout", "--json", "--export", str(export), *files], env)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    metrics = payload["metrics"]
    for name in (
        "total_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "trades",
        "win_rate",
        "profit_factor",
        "exposure",
        "fees",
    ):
        assert name in metrics
    assert metrics["trades"] == len(payload["trades"]) > 0
    assert payload["params"] == {"entry": 20, "exit": 10}
    assert json.loads(export.read_text())["trades"] == payload["trades"]
    first = payload["trades"][0]
    assert first["entry_bar"] < first["exit_bar"] and first["exit_reason"] in (
        "exit signal",
        "open at end (marked at the last close)",
    )


def test_backtest_tables_and_params(setup):
    _, files, env = setup
    result = fks(["backtest", "--strategy", "ma_cross", "--params", "fast=10", "--params", "slow=30", *files], env)
    assert result.exit_code == 0
    assert "{'fast': 10, 'slow': 30}" in result.output and "BACKTESTING REPORT" in result.output
    assert "SUMMARY METRICS" in result.output and "│ BTCUSDT │" in result.output


def test_hyperopt_grid_prints_the_best(setup):
    _, files, env = setup
    result = fks(["hyperopt", "--strategy", "donchian_breakout", "--objective", "sortino", "--json", *files], env)
    assert result.exit_code == 0, result.output
    best = json.loads(result.output.strip().splitlines()[-1])["BTCUSDT"]
    assert set(best["params"]) == {"entry", "exit"} and best["objective"] == "sortino"


def test_plot_writes_a_png(setup, tmp_path):
    _, files, env = setup
    png = tmp_path / "plot.png"
    result = fks(["plot", "--strategy", "ema_rsi_trend", "--symbol", "BTCUSDT", "--output", str(png), *files], env)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.slow
def test_lookahead_analysis_exit_codes_and_a_broken_file(setup):
    folder, files, env = setup
    environment = {**os.environ, **env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    honest = subprocess.run(
        [*FKS, "lookahead-analysis", "--strategy", "donchian_breakout", *files],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert honest.returncode == 0 and "no look-ahead" in honest.stdout
    peeking = subprocess.run(
        [*FKS, "lookahead-analysis", "--strategy", "peeking", *files],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert peeking.returncode == 1 and "uses the future" in peeking.stderr
    assert "BTCUSDT bar " in peeking.stdout and "params {'window': 5}" in peeking.stdout
    broken = subprocess.run(
        [*FKS, "backtest", "--strategy", "broken", *files], env=environment, capture_output=True, text=True, timeout=600
    )
    assert broken.returncode == 2 and broken.stdout == ""
    assert broken.stderr.strip() == f"Error: {folder / 'broken.py'}: defines no signals(bars, **params) function"


def test_backtest_conventions_are_flags(setup):
    """--open-trades, --profit-factor and --exposure switch to the other platforms' conventions; a bad choice
    is one line, exit 2."""
    _, files, env = setup
    base = ["backtest", "--strategy", "ma_cross", "--params", "fast=10", "--params", "slow=30", "--json", *files]
    ours = json.loads(fks(base, env).output)
    other = fks(
        [*base, "--open-trades", "exclude", "--profit-factor", "returns", "--exposure", "include-exit-bar"], env
    )
    assert other.exit_code == 0, other.output
    theirs = json.loads(other.output)
    trades = ours["trades"]
    still_open = sum(t["exit_reason"].startswith("open at end") for t in trades)
    closed = [t for t in trades if not t["exit_reason"].startswith("open at end")]
    assert theirs["metrics"]["trades"] == len(trades) - still_open == len(closed)
    gained, given = (
        sum(t["return"] for t in closed if t["return"] > 0),
        -sum(t["return"] for t in closed if t["return"] < 0),
    )
    assert theirs["metrics"]["profit_factor"] == pytest.approx(gained / given, rel=1e-12)
    assert theirs["metrics"]["exposure"] > ours["metrics"]["exposure"]
    assert theirs["metrics"]["total_return"] == ours["metrics"]["total_return"]
    bad = CliRunner().invoke(main, [*base, "--exposure", "always"], env=env)
    assert bad.exit_code == 2 and "--exposure" in bad.output

"""Optuna search: reproducible with a seed, scores agree with the grid's, never worse than what it tried."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from fks_pipelines.lib.quant.backtest import best, run_sweep
from fks_pipelines.lib.quant.optimize import optimize_with_optuna
from fks_pipelines.lib.quant.strategies import Strategy
from fks_pipelines.lib.quant.strategy_files import load_strategies
from tests.support import sample_hourly_bars

STRATEGIES = load_strategies()  # the built-ins


@pytest.fixture(scope="module")
def hourly() -> dict[str, np.ndarray]:
    return sample_hourly_bars("BTCUSDT", date(2024, 2, 1), date(2024, 4, 1))


def test_seeded_search_is_reproducible_and_consistent_with_the_grid(hourly):
    strategy = STRATEGIES["rsi_reversion"]
    first, trials = optimize_with_optuna(hourly, strategy, objective="sortino", n_trials=20, seed=7)
    again, _ = optimize_with_optuna(hourly, strategy, objective="sortino", n_trials=20, seed=7)
    assert first["params"] == again["params"] and first["score"] == again["score"]
    assert trials.height == 20
    grid = run_sweep(hourly, strategy, strategy.parameter_sets())
    grid_best = best(grid, "sortino")
    # The winner's score is what the grid computes for the same parameters, and no better than the grid's best.
    same = best(run_sweep(hourly, strategy, [first["params"]]), "sortino")
    assert same["score"] == pytest.approx(first["score"], rel=1e-12)
    assert first["score"] <= grid_best["score"] + 1e-12
    assert first["score"] == pytest.approx(trials["score"].max())


def test_invalid_combinations_are_pruned(hourly):
    # Half of this grid's product is invalid (fast must be below slow).
    strategy = Strategy(
        "small_ma",
        STRATEGIES["ma_cross"].signals,
        {"fast": (10, 20, 30), "slow": (15, 25)},
        lambda p: p["fast"] < p["slow"],
    )
    _, trials = optimize_with_optuna(hourly, strategy, objective="calmar", n_trials=15, seed=1)
    pruned = trials.filter(pl.col("state") == "PRUNED")
    assert pruned.height > 0 and (pruned["fast"] >= pruned["slow"]).all()
    complete = trials.filter(pl.col("state") == "COMPLETE")
    assert (complete["fast"] < complete["slow"]).all() and complete.height > 0

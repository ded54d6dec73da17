"""Optuna as an alternative to the full grid for large parameter spaces: the same strategies, the same
objectives (backtest.OBJECTIVES), a seeded TPE sampler so a run is reproducible."""

from __future__ import annotations

import logging

import polars as pl

from fks_pipelines.lib.quant.backtest import BacktestConfig, best, run_sweep
from fks_pipelines.lib.quant.strategies import Bars, Strategy

NO_TRADES_SCORE = -1e9  # what a parameter set that never trades scores (Optuna needs a finite number)


def optimize_with_optuna(
    bars: Bars,
    strategy: Strategy,
    *,
    objective: str = "sharpe",
    n_trials: int = 50,
    seed: int = 42,
    config: BacktestConfig = BacktestConfig(),
) -> tuple[dict, pl.DataFrame]:
    """(best trial as backtest.best() returns it, one row per trial with its parameters and score)."""
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    evaluated: dict[tuple, dict] = {}

    def score(trial: optuna.Trial) -> float:
        params = {name: trial.suggest_categorical(name, list(values)) for name, values in strategy.grid.items()}
        if not strategy.valid(params):
            raise optuna.TrialPruned(f"invalid combination {params}")
        key = tuple(sorted(params.items()))
        if key not in evaluated:
            evaluated[key] = best(run_sweep(bars, strategy, [params], config), objective)
        value = evaluated[key]["score"]
        return value if value != float("-inf") else NO_TRADES_SCORE

    study.optimize(score, n_trials=n_trials)
    trials = pl.DataFrame(
        [{"trial": t.number, "state": t.state.name, "score": t.value, **t.params} for t in study.trials]
    )
    winner = evaluated[tuple(sorted(study.best_trial.params.items()))]
    return winner, trials

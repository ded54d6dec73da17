"""Walk-forward validation: windows, point-in-time parameter choice, chained out-of-sample equity."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from fks_pipelines.lib.quant.backtest import BacktestConfig
from fks_pipelines.lib.quant.strategy_files import load_strategies
from fks_pipelines.lib.quant.walk_forward import Search, Window, choose_parameters, walk_forward, walk_forward_windows
from tests.support import sample_hourly_bars

STRATEGIES = load_strategies()  # the built-ins


@pytest.fixture(scope="module")
def hourly() -> dict[str, np.ndarray]:
    return sample_hourly_bars("SOLUSDT", date(2024, 1, 1), date(2024, 4, 1))


def test_windows_roll_and_tile_out_of_sample():
    windows = walk_forward_windows(1000, in_sample=400, out_of_sample=100)
    assert windows[0] == Window(0, 400, 500)
    assert windows[-1] == Window(500, 900, 1000)
    assert all(b.decision == a.out_of_sample_end for a, b in zip(windows, windows[1:], strict=False))
    assert walk_forward_windows(1000, 400, 100, step=50)[1] == Window(50, 450, 550)
    assert walk_forward_windows(300, 400, 100) == []


def test_decision_does_not_change_when_the_future_changes(hourly):
    strategy = STRATEGIES["ma_cross"]
    params = strategy.parameter_sets()[::8]
    window = Window(0, 1200, 1500)
    config = BacktestConfig()
    chosen = choose_parameters(hourly, strategy, params, window, "sharpe", config)
    future_changed = {k: v.copy() for k, v in hourly.items()}
    rng = np.random.default_rng(0)
    for v in future_changed.values():
        v[window.decision :] *= np.exp(rng.normal(0, 0.05, len(v) - window.decision))
    again = choose_parameters(future_changed, strategy, params, window, "sharpe", config)
    assert again["params"] == chosen["params"] and again["score"] == chosen["score"]
    # ...whereas changing the past can change it (the test is not vacuous).
    past_changed = {k: v.copy() for k, v in hourly.items()}
    for v in past_changed.values():
        v[: window.decision] = v[: window.decision][::-1].copy()
    assert choose_parameters(past_changed, strategy, params, window, "sharpe", config)["score"] != chosen["score"]


@pytest.mark.parametrize("objective", ["sharpe", "sortino", "calmar", "return_over_drawdown"])
def test_walk_forward_reports_out_of_sample_per_window(hourly, objective):
    strategy = STRATEGIES["bollinger_reversion"]
    frame, curve = walk_forward(
        hourly, strategy, strategy.parameter_sets(), in_sample=720, out_of_sample=240, objective=objective
    )
    windows = walk_forward_windows(len(hourly["close"]), 720, 240)
    assert frame.height == len(windows) > 3
    assert (frame["objective"] == objective).all()
    assert len(curve) == 240 * len(windows)
    assert curve[0] == pytest.approx(10_000.0, rel=1e-3)
    assert np.isfinite(frame["oos_total_return"].to_numpy()).all()
    # The chained curve ends where compounding the windows' out-of-sample returns ends.
    compounded = 10_000.0 * np.prod(1 + frame["oos_total_return"].to_numpy())
    assert curve[-1] == pytest.approx(compounded, rel=1e-9)


def test_optuna_search_is_point_in_time_and_reproducible(hourly):
    strategy = STRATEGIES["macd_cross"]
    window = Window(0, 1200, 1500)
    search = Search("optuna", trials=12, seed=3)
    config = BacktestConfig()
    chosen = choose_parameters(hourly, strategy, [], window, "sortino", config, search)
    assert set(chosen["params"]) == set(strategy.grid) and strategy.valid(chosen["params"])
    future_changed = {k: v.copy() for k, v in hourly.items()}
    for v in future_changed.values():
        v[window.decision :] *= 1.5
    again = choose_parameters(future_changed, strategy, [], window, "sortino", config, search)
    assert again["params"] == chosen["params"] and again["score"] == chosen["score"]
    frame, curve = walk_forward(
        hourly, strategy, [], in_sample=720, out_of_sample=240, objective="sortino", search=search
    )
    frame2, curve2 = walk_forward(
        hourly, strategy, [], in_sample=720, out_of_sample=240, objective="sortino", search=search
    )
    assert frame.height > 3 and frame["params"].to_list() == frame2["params"].to_list()
    np.testing.assert_array_equal(curve, curve2)
    with pytest.raises(ValueError, match="grid' or 'optuna"):
        Search("random")


@pytest.mark.slow
def test_walk_forward_on_one_pool_equals_the_serial_walk_forward(hourly):
    """Every window's grid search runs on the same forked workers (one pool per walk-forward); the choices,
    scores and out-of-sample figures are the serial run's, bit for bit."""
    from dataclasses import replace

    from polars.testing import assert_frame_equal

    strategy = STRATEGIES["macd_cross"]
    serial_config = BacktestConfig(chunk_size=5, workers=1)
    kwargs = dict(in_sample=720, out_of_sample=240, objective="sharpe")
    serial, serial_curve = walk_forward(hourly, strategy, strategy.parameter_sets(), config=serial_config, **kwargs)
    parallel_config = replace(serial_config, workers=2, parallel_cells=0)
    parallel, parallel_curve = walk_forward(
        hourly, strategy, strategy.parameter_sets(), config=parallel_config, **kwargs
    )
    assert serial.height > 3
    assert_frame_equal(serial.drop("params"), parallel.drop("params"))
    assert serial["params"].to_list() == parallel["params"].to_list()
    assert np.array_equal(serial_curve, parallel_curve)

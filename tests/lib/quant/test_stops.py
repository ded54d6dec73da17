"""Stops in backtests: a strategy file's stop-loss, take-profit and trailing stop, executed by vectorbt's stop
orders within the bar (backtest.py), on hand-made bars where every fill can be worked out by hand, and as GRID
parameters of sweeps on the bundled real BTC hourly history. backtesting.py's sl/tp orders are compared in
benchmarks/backtest.py (the peer is not a dependency)."""

from __future__ import annotations

import gzip
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fks_pipelines.lib.quant.backtest import (
    OPEN_AT_END,
    BacktestConfig,
    StopColumns,
    exit_reasons,
    run_sweep,
    simulate,
    stop_columns,
)
from fks_pipelines.lib.quant.report import backtest_symbol
from fks_pipelines.lib.quant.strategies import signal_matrix
from fks_pipelines.lib.quant.strategy_files import StrategyFileError, load_strategy_file

BUNDLED = Path(__file__).resolve().parents[3] / "fks_pipelines" / "data" / "freqtrade" / "BTC_USDT-1h.json.gz"
FEES, SLIP = 0.001, 0.001
CONFIG = BacktestConfig(fees=FEES, slippage=SLIP, init_cash=10_000.0)

# Mean reversion on an SMA; the stops come from GRID or STOPS, added below.
STRATEGY = '''
"""Long when the close crosses above its SMA, out when it crosses below."""
import numpy as np
from fks_pipelines.lib.quant.strategies import crossed_above, crossed_below

GRID = {{"window": [24, 72]{extra_grid}}}
{stops}

def signals(bars, window):
    close = bars["close"].to_numpy()
    mean = bars["close"].rolling_mean(window).to_numpy()
    return crossed_above(close, mean), crossed_below(close, mean)
'''


def strategy_file(folder: Path, name: str, extra_grid: str = "", stops: str = "") -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(STRATEGY.format(extra_grid=extra_grid, stops=stops)))
    return path


@pytest.fixture(scope="module")
def btc() -> dict[str, np.ndarray]:
    """Three months of the bundled real BTCUSDT hourly bars (2021-05 to 2021-08: large moves both ways)."""
    rows = np.asarray(json.loads(gzip.decompress(BUNDLED.read_bytes())), dtype=np.float64)
    start = int(np.searchsorted(rows[:, 0], 1_619_827_200_000))  # 2021-05-01
    rows = rows[start : start + 2_200]
    return {name: np.ascontiguousarray(rows[:, i + 1]) for i, name in enumerate(("open", "high", "low", "close"))}


def bars(*ohlc: tuple[float, float, float, float]) -> dict[str, np.ndarray]:
    columns = np.asarray(ohlc, dtype=np.float64).T
    return {name: np.ascontiguousarray(columns[i]) for i, name in enumerate(("open", "high", "low", "close"))}


def one_trade(b: dict[str, np.ndarray], stops: dict[str, float]):
    """An entry signal on bar 0 (filled at bar 1's open), no exit signal: only a stop can close the trade."""
    entries = np.zeros((len(b["close"]), 1), dtype=bool)
    entries[0] = True
    simulation = simulate(b, entries, np.zeros_like(entries), CONFIG, StopColumns.of([stops]))
    return simulation, exit_reasons(b, simulation.trade_records, stops, entries[:, 0], np.zeros(len(entries), bool))


ENTRY = 100.0 * (1 + SLIP)  # bar 1's open with slippage: the price the stops are measured from


def test_a_bar_falling_through_the_stop_exits_at_the_stop_with_slippage_and_fees():
    b = bars((100, 101, 99, 100), (100, 101, 90, 100), (100, 100.5, 94, 96), (96, 97, 95, 96))
    simulation, reasons = one_trade(b, {"stop_loss": 0.05})
    buy, sell = simulation.order_records
    assert buy["idx"] == 1 and buy["price"] == pytest.approx(ENTRY, rel=1e-12)
    # bar 1 (the entry bar) reaches 90 but is not checked: its range is partly before the fill
    level = ENTRY * (1 - 0.05)
    assert sell["idx"] == 2 and sell["price"] == pytest.approx(level * (1 - SLIP), rel=1e-12)
    assert sell["fees"] == pytest.approx(sell["size"] * sell["price"] * FEES, rel=1e-12)
    assert reasons == ["stop loss"]


def test_a_bar_gapping_through_the_stop_exits_at_its_open():
    b = bars((100, 101, 99, 100), (100, 101, 99, 100), (92, 93, 91, 92), (92, 93, 91, 92))
    simulation, reasons = one_trade(b, {"stop_loss": 0.05})
    sell = simulation.order_records[1]
    assert sell["idx"] == 2 and sell["price"] == pytest.approx(92 * (1 - SLIP), rel=1e-12)
    assert reasons == ["stop loss"]


def test_a_take_profit_exits_at_its_level_and_a_bar_touching_both_takes_the_stop():
    rise = bars((100, 101, 99, 100), (100, 105, 99, 104), (104, 111, 103, 109), (109, 112, 108, 110))
    simulation, reasons = one_trade(rise, {"stop_loss": 0.05, "take_profit": 0.1})
    sell = simulation.order_records[1]
    assert sell["idx"] == 2 and sell["price"] == pytest.approx(ENTRY * 1.1 * (1 - SLIP), rel=1e-12)
    assert reasons == ["take profit"]
    both = bars((100, 101, 99, 100), (100, 101, 99, 100), (100, 115, 90, 100), (100, 101, 99, 100))
    simulation, reasons = one_trade(both, {"stop_loss": 0.05, "take_profit": 0.1})
    sell = simulation.order_records[1]
    assert sell["idx"] == 2 and sell["price"] == pytest.approx(ENTRY * 0.95 * (1 - SLIP), rel=1e-12)
    assert reasons == ["stop loss"]


def test_an_exit_signal_fills_at_the_open_before_a_stop_touched_later_in_that_bar():
    """The exit decided on bar 1's close is a market order at bar 2's open: it fills first, so neither the
    stop-loss nor the take-profit that bar 2's range touches later can fill (as in backtesting.py)."""
    b = bars((100, 101, 99, 100), (100, 101, 99, 100), (100, 120, 90, 100), (100, 101, 99, 100))
    entries, exits = np.zeros((4, 1), dtype=bool), np.zeros((4, 1), dtype=bool)
    entries[0], exits[1] = True, True
    for stops in ({"stop_loss": 0.05}, {"take_profit": 0.1}, {"trailing_stop": 0.05, "take_profit": 0.1}):
        simulation = simulate(b, entries, exits, CONFIG, StopColumns.of([stops]))
        sell = simulation.order_records[1]
        assert sell["idx"] == 2 and sell["price"] == pytest.approx(100 * (1 - SLIP), rel=1e-12)
        assert exit_reasons(b, simulation.trade_records, stops, entries[:, 0], exits[:, 0]) == ["exit signal"]
    gap = bars((100, 101, 99, 100), (100, 101, 99, 100), (93, 94, 90, 92), (92, 93, 91, 92))
    simulation = simulate(gap, entries, exits, CONFIG, StopColumns.of([{"stop_loss": 0.05}]))
    assert simulation.order_records[1]["price"] == pytest.approx(93 * (1 - SLIP), rel=1e-12)  # the open, either way


def test_a_trailing_stop_ratchets_up_with_the_highs():
    b = bars(
        (100, 101, 99, 100),
        (100, 101, 99, 100),  # entry at 100.1
        (101, 120, 101, 119),  # high 120: the stop rises to 108 after this bar
        (119, 125, 113, 124),  # low 113 > 108: held; high 125: the stop rises to 112.5
        (118, 119, 110, 111),  # low 110 < 112.5: out at 112.5
        (111, 112, 100, 101),
    )
    simulation, reasons = one_trade(b, {"trailing_stop": 0.1})
    sell = simulation.order_records[1]
    assert sell["idx"] == 4 and sell["price"] == pytest.approx(125 * 0.9 * (1 - SLIP), rel=1e-12)
    assert reasons == ["trailing stop"]
    fixed, _ = one_trade(b, {"stop_loss": 0.1})  # the same fraction, not trailing: never touched
    assert len(fixed.order_records) == 1


def test_a_short_stop_loss_sits_above_the_entry():
    """With shorts allowed, an exit signal opens a short; its stop-loss is above the fill, bought back with
    slippage up."""
    b = bars((100, 101, 99, 100), (100, 101, 99, 100), (100, 106, 99, 104), (104, 105, 103, 104))
    entries, exits = np.zeros((4, 1), dtype=bool), np.zeros((4, 1), dtype=bool)
    exits[0] = True
    config = BacktestConfig(fees=FEES, slippage=SLIP, allow_shorts=True)
    stops = {"stop_loss": 0.05}
    simulation = simulate(b, entries, exits, config, StopColumns.of([stops]))
    sell, buy = simulation.order_records
    fill = 100 * (1 - SLIP)
    assert sell["side"] == 1 and buy["idx"] == 2 and buy["price"] == pytest.approx(fill * 1.05 * (1 + SLIP), rel=1e-12)
    assert exit_reasons(b, simulation.trade_records, stops, entries[:, 0], exits[:, 0], allow_shorts=True) == [
        "stop loss"
    ]


def test_optuna_searches_the_stop_parameters(tmp_path, btc):
    from fks_pipelines.lib.quant.optimize import optimize_with_optuna

    searched = load_strategy_file(strategy_file(tmp_path, "searched", ', "stop_loss": [None, 0.01, 0.03]'))
    winner, trials = optimize_with_optuna(btc, searched, objective="sharpe", n_trials=6, seed=1, config=CONFIG)
    assert "stop_loss" in trials.columns and trials["stop_loss"].drop_nulls().len() > 0
    again = run_sweep(btc, searched, [winner["params"]], CONFIG)
    assert again["sharpe"][0] == winner["sharpe"] and again["trades"][0] == winner["trades"]


def test_grid_over_stop_loss_gives_one_cell_per_value_and_none_is_the_stopless_strategy(tmp_path, btc):
    searched = load_strategy_file(strategy_file(tmp_path, "searched", ', "stop_loss": [None, 0.01, 0.03]'))
    plain = load_strategy_file(strategy_file(tmp_path, "plain"))
    assert not plain.has_stops and stop_columns(plain, plain.parameter_sets()) is None
    params = searched.parameter_sets()
    assert [p["stop_loss"] for p in params] == [None, 0.01, 0.03, None, 0.01, 0.03]
    results = run_sweep(btc, searched, params, CONFIG)
    assert results.height == 6 and [p["stop_loss"] for p in results["params"]] == [None, 0.01, 0.03] * 2
    without = run_sweep(btc, plain, plain.parameter_sets(), CONFIG)
    # the None cells: exactly the strategy without stops
    assert results[[0, 3]].drop("strategy", "params").equals(without.drop("strategy", "params"))
    assert len({results["total_return"][i] for i in range(3)}) == 3  # each stop trades differently
    # the 1% stop's exits: each at its level, or at the open when the bar opened through it
    entries, exits = signal_matrix(searched, btc, params[:2])
    records = simulate(btc, entries, exits, CONFIG, stop_columns(searched, params[:2])).trade_records
    loose, tight = records[records["col"] == 0], records[records["col"] == 1]
    assert set(exit_reasons(btc, loose, {}, entries[:, 0], exits[:, 0])) <= {"exit signal", OPEN_AT_END}
    reasons = exit_reasons(btc, tight, {"stop_loss": 0.01}, entries[:, 1], exits[:, 1])
    stopped = tight[np.asarray(reasons) == "stop loss"]
    assert len(stopped) > 10
    for t in stopped:  # slippage on either
        level = t["entry_price"] * (1 - 0.01)
        assert t["exit_price"] == pytest.approx(min(level, btc["open"][t["exit_idx"]]) * (1 - SLIP), rel=1e-12)
        assert btc["low"][t["exit_idx"]] <= level


@pytest.mark.slow  # fks backtest's report builds vectorbt's Portfolio (its uncached kernel: 10-40 s per process)
def test_fixed_stops_apply_to_every_cell_and_reach_the_report(tmp_path, btc):
    fixed = load_strategy_file(
        strategy_file(tmp_path, "fixed", stops='STOPS = {"trailing_stop": 0.02, "take_profit": 0.03}')
    )
    assert fixed.stops_for({"window": 24}) == {"trailing_stop": 0.02, "take_profit": 0.03}
    columns = stop_columns(fixed, fixed.parameter_sets())
    assert columns is not None and columns.sl_trail.all() and columns.column(1) == fixed.stops
    report = backtest_symbol("BTCUSDT", btc, fixed, {"window": 24}, CONFIG)
    reasons = {t["exit_reason"] for t in report.trades}
    assert {"trailing stop", "take profit"} <= reasons
    for t in report.trades:
        if t["exit_reason"] == "take profit":  # never above its level: a gap up fills at the open, higher
            assert t["exit_price"] >= t["entry_price"] * 1.03 * (1 - SLIP) * (1 - 1e-12)


@pytest.mark.parametrize(
    ("extra_grid", "stops", "fault"),
    [
        ("", 'STOPS = {"stop_loss": 0}', "STOPS['stop_loss'] must be a fraction of the entry price in (0, 1)"),
        ("", 'STOPS = {"stop_loss": 5}', "STOPS['stop_loss'] must be"),
        ("", 'STOPS = {"trailing_stop": 1.0}', "STOPS['trailing_stop'] must be"),
        ("", 'STOPS = {"take_profit": -0.1}', "STOPS['take_profit'] must be a fraction of the entry price > 0"),
        ("", 'STOPS = {"take_profit": "5%"}', "STOPS['take_profit'] must be"),
        ("", 'STOPS = {"stop_loss": None}', "STOPS['stop_loss'] must be"),
        ("", 'STOPS = {"stoploss": 0.05}', "STOPS key 'stoploss' is not one of"),
        ("", "STOPS = [0.05]", "STOPS must be a dict"),
        (', "stop_loss": [0.02, 1.5]', "", "GRID['stop_loss'] values must be a fraction of the entry price in (0, 1)"),
        (', "take_profit": [True]', "", "GRID['take_profit'] values must be"),
        (', "stop_loss": [0.02]', 'STOPS = {"stop_loss": 0.05}', "stop_loss is both fixed in STOPS and searched"),
        (', "trailing_stop": [0.02]', 'STOPS = {"stop_loss": 0.05}', "declares both stop_loss and trailing_stop"),
    ],
)
def test_bad_stops_are_refused_in_one_line_naming_the_file_and_key(tmp_path, extra_grid, stops, fault):
    path = strategy_file(tmp_path, "bad", extra_grid, stops)
    with pytest.raises(StrategyFileError) as error:
        load_strategy_file(path)
    message = str(error.value)
    assert str(path) in message and fault in message and "\n" not in message


@pytest.mark.slow  # vectorbt's Portfolio compiles its uncached from_signals kernel in every process (10-40 s)
@pytest.mark.parametrize("allow_shorts", [False, True], ids=["long_only", "long_short"])
def test_simulate_with_stops_gives_the_portfolios_records_exactly(tmp_path, btc, allow_shorts):
    """The sweep's kernel call with stops holds the records of ``Portfolio.from_signals`` with the same stops."""
    from fks_pipelines.lib.quant.backtest import portfolio

    path = strategy_file(tmp_path, "grid", ', "stop_loss": [None, 0.01], "take_profit": [None, 0.02]')
    strategy = load_strategy_file(path)
    params = strategy.parameter_sets()
    entries, exits = signal_matrix(strategy, btc, params)
    stops = stop_columns(strategy, params)
    config = BacktestConfig(fees=FEES, slippage=SLIP, allow_shorts=allow_shorts)
    simulation = simulate(btc, entries, exits, config, stops)
    pf = portfolio(btc, entries, exits, config, stops)
    assert len(simulation.order_records) > 100
    assert np.array_equal(simulation.order_records, pf.order_records)
    assert np.array_equal(simulation.trade_records, pf.trades.values)


def test_a_stop_given_as_text_is_checked_like_a_files():
    from fks_pipelines.lib.quant.strategy_files import stop_from_text

    assert stop_from_text("stop_loss", "0.03", "--params") == 0.03
    assert stop_from_text("take_profit", "2", "--params") == 2.0
    assert stop_from_text("trailing_stop", "None", "--params") is None
    for key, raw in (("stop_loss", "5"), ("trailing_stop", "0"), ("take_profit", "-1"), ("take_profit", "x")):
        with pytest.raises(StrategyFileError, match=f"--params: {key}='{raw}' must be a fraction"):
            stop_from_text(key, raw, "--params")

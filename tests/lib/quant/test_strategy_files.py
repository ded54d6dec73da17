"""Strategy files: loading, the one-line refusals, the registry by name, look-ahead detection, and parallel
sweeps equal to serial ones, on real Binance bars."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fks_pipelines.lib.quant.backtest import BacktestConfig, run_sweep
from fks_pipelines.lib.quant.lookahead import lookahead_findings
from fks_pipelines.lib.quant.strategies import IndicatorMemo, SweepBars, indicator
from fks_pipelines.lib.quant.strategy_files import StrategyFileError, bars_frame, load_strategies, load_strategy_file
from fks_pipelines.lib.sources.files import read_kline_file

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "strategies"

PEEKING = '''
"""Buys before a rise it can only know from the next close (a centred average)."""
import numpy as np
import polars as pl

GRID = {"window": [5, 11]}


def signals(bars: pl.DataFrame, window: int):
    centred = bars["close"].rolling_mean(window, center=True).fill_null(strategy="forward").to_numpy()
    close = bars["close"].to_numpy()
    return close < centred, close > centred
'''


@pytest.fixture(scope="module")
def bars(shared_data) -> dict[str, np.ndarray]:
    frame = read_kline_file(shared_data / "spot" / "BTCUSDT-1m-2020-01-01.zip").frame
    return {c: frame[c].cast(pl.Float64).to_numpy() for c in ("open", "high", "low", "close", "volume")}


@pytest.fixture
def strategies_dir(tmp_path):
    folder = tmp_path / "strategies"
    folder.mkdir()
    for example in EXAMPLES.glob("*.py"):
        (folder / example.name).write_text(example.read_text())
    return folder


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_examples_load_by_name_beside_the_builtins(strategies_dir, bars):
    strategies = load_strategies(strategies_dir)
    assert strategies.errors == {}
    assert {"ma_cross", "donchian_breakout", "ema_rsi_trend"} <= set(strategies)
    donchian = strategies["donchian_breakout"]
    assert donchian.description.startswith("Donchian breakout")
    assert strategies.default_params()["donchian_breakout"] == {"entry": 20, "exit": 10}
    entries, exits = donchian.signals(bars, **strategies.default_params()["donchian_breakout"])
    assert entries.dtype == bool and len(entries) == len(bars["close"]) and entries.any() and exits.any()


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ("import nonexistent_module_xyz\nGRID = {'a': [1]}\ndef signals(bars, a): pass\n", "does not import"),
        ("GRID = {'a': [1]}\n", "defines no signals"),
        ("def signals(bars, a): pass\n", "GRID must be"),
        ("GRID = {'a': []}\ndef signals(bars, a): pass\n", "GRID['a'] must be"),
        ("GRID = {'a': [1]}\nDEFAULTS = {'b': 1}\ndef signals(bars, a): pass\n", "DEFAULTS must set"),
        ("GRID = {'a': [1]}\ndef signals(bars, b): pass\n", "does not take the GRID parameters"),
    ],
)
def test_a_broken_file_is_refused_in_one_line_naming_it(tmp_path, body, fault):
    path = write(tmp_path, "broken", body)
    with pytest.raises(StrategyFileError) as error:
        load_strategy_file(path)
    message = str(error.value)
    assert str(path) in message and fault in message and "\n" not in message


@pytest.mark.parametrize(
    ("returned", "fault"),
    [
        ("np.zeros(n - 1, bool), np.zeros(n, bool)", "entries of shape"),
        ("np.zeros(n, bool), np.zeros(n, float)", "exits of dtype float64"),
        ("np.full(n, np.nan), np.zeros(n, bool)", "NaN entries"),
        ("np.zeros(n, bool)", "tuple (entries, exits)"),
    ],
)
def test_bad_signals_are_refused_when_called(tmp_path, bars, returned, fault):
    path = write(
        tmp_path,
        "bad",
        "import numpy as np\nGRID = {'a': [1, 2]}\n"
        f"def signals(bars, a):\n    n = bars.height\n    return {returned}\n",
    )
    strategy = load_strategy_file(path)
    with pytest.raises(StrategyFileError) as error:
        strategy.signals(bars, a=1)
    assert str(path) in str(error.value) and fault in str(error.value)


def test_parameters_not_in_grid_are_refused(strategies_dir, bars):
    strategy = load_strategy_file(strategies_dir / "donchian_breakout.py")
    with pytest.raises(StrategyFileError, match="parameters not in GRID: window"):
        strategy.signals(bars, entry=20, exit=10, window=5)


def test_a_broken_file_leaves_the_others_working(strategies_dir, bars):
    write(strategies_dir, "broken", "GRID = {'a': [1]}\n")
    write(strategies_dir, "ma_cross", "GRID = {'a': [1]}\ndef signals(bars, a): pass\n")
    strategies = load_strategies(strategies_dir)
    errors = strategies.errors
    assert set(errors) == {"broken", "ma_cross"} and "is a built-in" in errors["ma_cross"]
    with pytest.raises(StrategyFileError, match="broken.py: defines no signals"):
        strategies["broken"]
    assert "broken" not in strategies and strategies.get("broken") is None
    assert strategies["ma_cross"].source is None  # the built-in, not the file
    assert "broken" not in load_strategies() and "donchian_breakout" not in load_strategies()  # nothing kept
    donchian = strategies["donchian_breakout"]
    results = run_sweep(bars, donchian, donchian.parameter_sets())
    assert results.height == 9 and results["trades"].sum() > 0


def test_lookahead_catches_a_peeking_strategy_and_clears_honest_ones(strategies_dir, bars):
    write(strategies_dir, "peeking", PEEKING)
    strategies = load_strategies(strategies_dir)
    findings = lookahead_findings(strategies["peeking"], bars, samples=10)
    assert findings, "a centred average uses the next bars"
    first = findings[0]
    assert first.bar <= first.truncated_at and first.params == {"window": 5} and first.full != first.truncated
    for name in (
        "ma_cross",
        "rsi_reversion",
        "macd_cross",
        "bollinger_reversion",
        "donchian_breakout",
        "ema_rsi_trend",
    ):
        assert lookahead_findings(strategies[name], bars, samples=10) == [], name


@pytest.mark.slow
def test_parallel_sweep_equals_the_serial_one(strategies_dir, bars):
    strategies = load_strategies(strategies_dir)
    for name in ("ma_cross", "ema_rsi_trend"):
        strategy = strategies[name]
        params = strategy.parameter_sets()[:60]
        serial = run_sweep(
            bars, strategy, params, BacktestConfig(freq="1min", chunk_size=7, workers=1, parallel_cells=0)
        )
        done: list[int] = []
        config = BacktestConfig(freq="1min", chunk_size=7, workers=2, parallel_cells=0)
        parallel = run_sweep(bars, strategy, params, config, lambda d, _, seen=done: seen.append(d))
        assert_frame_equal(serial.drop("params"), parallel.drop("params"))  # bit for bit, in the same order
        assert serial["params"].to_list() == parallel["params"].to_list()
        assert done[-1] == len(params) and done == sorted(done)
        assert serial["trades"].sum() > 0


def test_the_lookahead_policy_refuses_flags_or_skips(strategies_dir, bars):
    from fks_pipelines.lib.quant.lookahead import LookAheadError, screen_strategies

    write(strategies_dir, "peeking", PEEKING)
    strategies = load_strategies(strategies_dir)
    both = [strategies["ma_cross"], strategies["peeking"]]
    with pytest.raises(LookAheadError, match="peeking: bar"):
        screen_strategies(both, bars, "refuse")
    kept, flagged = screen_strategies(both, bars, "flag")
    assert kept == both and set(flagged) == {"peeking"}
    assert screen_strategies(both, bars, "off") == (both, {})


def test_annualisation_is_an_option(bars):
    strategy, params = load_strategies()["ma_cross"], [{"fast": 20, "slow": 50}]
    crypto = run_sweep(bars, strategy, params, BacktestConfig(freq="1min"))
    equities = run_sweep(bars, strategy, params, BacktestConfig(freq="1min", days_per_year=252))
    assert equities["sharpe"][0] == pytest.approx(crypto["sharpe"][0] * np.sqrt(252 / 365), rel=1e-12)
    assert equities["total_return"][0] == crypto["total_return"][0]


BUILTINS = ("ma_cross", "rsi_reversion", "macd_cross", "bollinger_reversion", "bollinger_breakout")


def test_builtins_are_strategy_files_in_the_package_loaded_by_the_same_loader(bars):
    """Each built-in is a strategy file of the user's interface (signals, GRID, docstring, DEFAULTS) in
    fks_pipelines/strategies/, loaded by load_strategy_file: same checks, same signals as the registry's."""
    from fks_pipelines.lib.quant import indicators as ind
    from fks_pipelines.lib.quant.strategies import BUILTIN_DIR, crossed_above, crossed_below

    strategies = load_strategies(BUILTIN_DIR.parent / "no_user_strategies")
    assert sorted(p.stem for p in BUILTIN_DIR.glob("[!_]*.py")) == sorted(BUILTINS)
    for name in BUILTINS:
        loaded = load_strategy_file(BUILTIN_DIR / f"{name}.py", builtin=True)
        registered = strategies[name]
        assert loaded.description and loaded.description == registered.description
        assert dict(loaded.grid) == dict(registered.grid) and loaded.defaults == strategies.default_params()[name]
        assert loaded.parameter_sets() == registered.parameter_sets()
        entries, exits = loaded.signals(bars, **loaded.defaults)
        again = registered.signals(pl.DataFrame(bars), **registered.defaults)
        assert np.array_equal(entries, again[0]) and np.array_equal(exits, again[1]) and entries.any()
        with pytest.raises(StrategyFileError, match=f"{name}.py: parameters not in GRID: bogus"):
            loaded.signals(bars, **loaded.defaults, bogus=1)
    # The same numbers as the indicators crossed by hand, and the grid's constraint (fast < slow) kept.
    fast, slow = ind.sma(bars["close"], 20), ind.sma(bars["close"], 50)
    entries, exits = strategies["ma_cross"].signals(bars, fast=20, slow=50)
    assert np.array_equal(entries, crossed_above(fast, slow)) and np.array_equal(exits, crossed_below(fast, slow))
    assert len(strategies["ma_cross"].parameter_sets()) == 397
    assert strategies["rsi_reversion"].warmup({"window": 14, "lower": 30, "upper": 70}) == 42  # levels aren't windows


def test_a_sweep_frame_carries_the_sweeps_indicator_memo(bars):
    """A strategy file gets a polars frame; during a sweep it is the sweep's frame, which carries the sweep's
    indicator memo itself (no registry elsewhere): each indicator once per sweep, none kept for other frames."""
    from fks_pipelines.lib.quant import indicators as ind

    calls: list[int] = []

    def sma(close, window):
        calls.append(window)
        return ind.sma(close, window)

    swept = SweepBars(bars)
    frame = bars_frame(swept)
    assert bars_frame(swept) is frame and isinstance(frame.indicator_memo, IndicatorMemo)
    first = indicator(frame, sma, 20)
    assert indicator(swept, sma, 20) is first and indicator(frame, sma, 20) is first and calls == [20]
    assert np.array_equal(first, ind.sma(bars["close"], 20), equal_nan=True)
    shorter = indicator(frame.head(1000), sma, 20)  # another frame's closes: computed, not taken from the memo
    indicator(pl.DataFrame(bars), sma, 20)
    indicator(SweepBars(bars), sma, 20)  # another sweep: its own memo
    assert calls == [20, 20, 20, 20] and len(shorter) == 1000
    # The built-in's signals through a sweep's frame equal those on plain bars.
    strategy = load_strategies()["ma_cross"]
    on_sweep = strategy.signals(swept, fast=20, slow=50)
    plain = strategy.signals(bars, fast=20, slow=50)
    assert np.array_equal(on_sweep[0], plain[0]) and np.array_equal(on_sweep[1], plain[1]) and plain[0].any()
    assert {("sma", 20), ("sma", 50)} <= set(swept.indicator_memo.values)

"""Backtests: vectorbt's results reproduced by a plain per-bar loop, and the sweep's bookkeeping."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from fks_pipelines.lib.quant.backtest import METRICS, BacktestConfig, best, next_bar, portfolio, run_sweep
from fks_pipelines.lib.quant.strategies import signal_matrix
from fks_pipelines.lib.quant.strategy_files import load_strategies
from tests.support import sample_hourly_bars

STRATEGIES = load_strategies()  # the built-ins


@pytest.fixture(scope="module")
def hourly() -> dict[str, np.ndarray]:
    return sample_hourly_bars("ETHUSDT", date(2024, 1, 1), date(2024, 3, 1))


def loop_backtest(bars, entries, exits, fees, slippage, cash):
    """All-in long-only, signal on close t, fill at open t+1, fees and slippage on each fill: a per-bar loop."""
    size, trades = 0.0, []
    entries, exits = next_bar(entries), next_bar(exits)
    for t in range(len(bars["close"])):
        if entries[t] and exits[t]:
            continue
        if entries[t] and size == 0.0:
            price = bars["open"][t] * (1 + slippage)
            size = cash / (price * (1 + fees))
            cash -= size * price * (1 + fees)
            trades.append(("buy", t, size, price))
        elif exits[t] and size > 0.0:
            price = bars["open"][t] * (1 - slippage)
            cash += size * price * (1 - fees)
            trades.append(("sell", t, size, price))
            size = 0.0
    return cash + size * bars["close"][-1], trades


@pytest.mark.slow
def test_per_bar_loop_reproduces_vectorbt(hourly):
    config = BacktestConfig(fees=0.001, slippage=0.0005, init_cash=10_000.0)
    for fast, slow in ((10, 40), (20, 100), (5, 200)):
        entries, exits = STRATEGIES["ma_cross"].signals(hourly, fast=fast, slow=slow)
        pf = portfolio(hourly, entries[:, None], exits[:, None], config)
        equity, trades = loop_backtest(hourly, entries, exits, config.fees, config.slippage, config.init_cash)
        assert len(trades) > 4
        assert abs(float(np.asarray(pf.value())[-1, 0]) - equity) <= 1e-9 * equity
        orders = pf.orders.records_readable
        assert len(orders) == len(trades)
        np.testing.assert_allclose(orders["Size"].to_numpy(), [t[2] for t in trades], rtol=1e-12)
        np.testing.assert_allclose(orders["Price"].to_numpy(), [t[3] for t in trades], rtol=1e-12)
        assert list(orders["Timestamp"]) == [t[1] for t in trades]


@pytest.mark.slow
def test_sweep_is_chunked_and_complete(hourly):
    strategy = STRATEGIES["ma_cross"]
    params = strategy.parameter_sets()
    assert len(params) == 397  # the ~400-combination grid of the benchmark
    seen = []
    results = run_sweep(
        hourly, strategy, params[:120], BacktestConfig(chunk_size=50), on_chunk=lambda d, t: seen.append((d, t))
    )
    assert seen == [(50, 120), (100, 120), (120, 120)]
    assert results.height == 120
    assert [dict(p) for p in results["params"]] == params[:120]
    # Same numbers whatever the chunking.
    again = run_sweep(hourly, strategy, params[:120], BacktestConfig(chunk_size=7))
    np.testing.assert_allclose(results["total_return"].to_numpy(), again["total_return"].to_numpy(), rtol=0, atol=1e-12)
    assert (results["buy_and_hold_return"] == hourly["close"][-1] / hourly["close"][0] - 1).all()
    assert results["trades"].min() >= 0 and (results["exposure"].is_between(0, 1)).all()


def test_best_picks_the_objective_maximum_deterministically(hourly):
    strategy = STRATEGIES["bollinger_reversion"]
    results = run_sweep(hourly, strategy, strategy.parameter_sets())
    chosen = best(results, "sharpe")
    eligible = results.filter(pl.col("trades") >= 1)
    assert chosen["sharpe"] == eligible["sharpe"].max()
    assert best(results, "sharpe") == chosen
    ratio = best(results, "return_over_drawdown")
    assert ratio["score"] == pytest.approx(ratio["total_return"] / abs(ratio["max_drawdown"]))


def test_every_strategy_produces_point_in_time_signals(hourly):
    cut = 1000
    changed = {k: v.copy() for k, v in hourly.items()}
    for v in changed.values():
        v[cut:] *= 1.3
    for strategy in STRATEGIES.values():
        params = strategy.parameter_sets()[:3]
        a_entries, a_exits = signal_matrix(strategy, hourly, params)
        b_entries, b_exits = signal_matrix(strategy, changed, params)
        assert (a_entries[:cut] == b_entries[:cut]).all() and (a_exits[:cut] == b_exits[:cut]).all(), strategy.name
        assert a_entries.any(), strategy.name


@pytest.mark.slow  # vectorbt's accessors compile their uncached kernels in every process (seconds)
@pytest.mark.parametrize("allow_shorts", [False, True], ids=["long_only", "long_short"])
def test_metrics_equal_vectorbts_own_accessors(hourly, allow_shorts):
    """portfolio_metrics computes every metric from vectorbt's records in one pass; each must be the number
    vectorbt's own accessor gives, including a column that never trades and one whose last trade is open."""
    from fks_pipelines.lib.quant.backtest import portfolio_metrics

    strategy = STRATEGIES["ma_cross"]
    params = strategy.parameter_sets()[:40]
    entries, exits = signal_matrix(strategy, hourly, params)
    never = np.zeros((len(hourly["close"]), 1), dtype=bool)
    held = never.copy()
    held[-50] = True  # enters near the end and never exits: an open trade
    entries, exits = np.hstack([entries, never, held]), np.hstack([exits, never, never])
    pf = portfolio(hourly, entries, exits, BacktestConfig(allow_shorts=allow_shorts))
    mine = portfolio_metrics(pf, hourly)
    trades = pf.trades
    assert ((pf.assets().to_numpy() < 0).any()) == allow_shorts
    reference = {
        "total_return": pf.total_return(),
        "cagr": pf.annualized_return(),
        "sharpe": pf.sharpe_ratio(),
        "sortino": pf.sortino_ratio(),
        "calmar": pf.calmar_ratio(),
        "max_drawdown": pf.max_drawdown(),
        "max_drawdown_duration_bars": pf.drawdowns.max_duration().dt.total_seconds().fillna(0) / 3600,
        "win_rate": trades.win_rate(),
        "profit_factor": trades.profit_factor(),
        "expectancy": trades.expectancy(),
        "trades": trades.count(),
        "avg_trade_duration_bars": trades.duration.mean(),
        "exposure": (pf.assets() != 0).mean(),
        "fees_paid": pf.orders.fees.sum(),
    }
    assert set(reference) | {"buy_and_hold_return"} == set(METRICS)
    never_col = len(params)
    for name, expected in reference.items():
        expected = np.array(expected, dtype=float)
        if name in ("sharpe", "sortino"):  # a flat equity curve: vectorbt says inf, we say undefined
            assert expected[never_col] == np.inf and np.isnan(mine[name][never_col])
            expected[never_col] = np.nan
        np.testing.assert_allclose(mine[name], expected, rtol=1e-9, atol=1e-12, err_msg=name)
    assert (
        mine["trades"][never_col] == 0
        and np.isnan(mine["win_rate"][never_col])
        and mine["total_return"][never_col] == 0
    )
    assert trades.values["status"][trades.values["col"] == len(params) + 1].tolist() == [0]  # really open
    np.testing.assert_allclose(mine["buy_and_hold_return"], hourly["close"][-1] / hourly["close"][0] - 1)


@pytest.mark.parametrize("allow_shorts", [False, True], ids=["long_only", "long_short"])
def test_simulate_gives_the_portfolios_records_exactly(hourly, allow_shorts):
    """The sweep runs vectorbt's kernels without building a Portfolio: its order and trade records, and so
    every metric, are the Portfolio's own, bit for bit (an open last trade included)."""
    from fks_pipelines.lib.quant.backtest import portfolio_metrics, simulate, simulation_metrics

    strategy = STRATEGIES["ma_cross"]
    params = strategy.parameter_sets()[:30]
    entries, exits = signal_matrix(strategy, hourly, params)
    held = np.zeros((len(hourly["close"]), 1), dtype=bool)
    held[-50] = True
    entries, exits = np.hstack([entries, held]), np.hstack([exits, np.zeros_like(held)])
    config = BacktestConfig(allow_shorts=allow_shorts)
    pf = portfolio(hourly, entries, exits, config)
    simulation = simulate(hourly, entries, exits, config)
    assert len(simulation.order_records) > 100
    assert np.array_equal(simulation.order_records, pf.order_records)
    assert np.array_equal(simulation.trade_records, pf.trades.values)
    assert (simulation.trade_records["status"] == 0).any()
    fast = simulation_metrics(simulation, hourly, 3600.0)
    for name, values in portfolio_metrics(pf, hourly).items():
        np.testing.assert_array_equal(fast[name], values, err_msg=name)


def _with_open_and_winning_columns(hourly, n_params: int = 20):
    """Signals of ``n_params`` MA pairs, plus a column whose only trade is still open at the end and one
    column with a single winning trade (no loss)."""
    strategy = STRATEGIES["ma_cross"]
    entries, exits = signal_matrix(strategy, hourly, strategy.parameter_sets()[:n_params])
    n = len(hourly["close"])
    held, win_in, win_out = (np.zeros((n, 1), dtype=bool) for _ in range(3))
    held[-50] = True
    opens = hourly["open"]
    i = 100
    j = i + 1 + int(np.argmax(opens[i + 2 : i + 500] > opens[i + 1] * 1.02))  # fills at j + 1's open, 2% higher
    win_in[i], win_out[j] = True, True
    return np.hstack([entries, held, win_in]), np.hstack([exits, np.zeros_like(held), win_out])


def _metrics(hourly, entries, exits, **conventions):
    from fks_pipelines.lib.quant.backtest import Conventions, simulate, simulation_metrics

    simulation = simulate(hourly, entries, exits, BacktestConfig())
    return simulation, simulation_metrics(simulation, hourly, 3600.0, 365.0, Conventions(**conventions))


def test_open_trades_option_leaves_them_out_of_the_trade_statistics(hourly):
    entries, exits = _with_open_and_winning_columns(hourly)
    simulation, counted = _metrics(hourly, entries, exits)
    _, excluded = _metrics(hourly, entries, exits, open_trades="exclude")
    trades = simulation.trade_records
    k = entries.shape[1]
    closed = np.bincount(trades["col"][trades["status"] == 1], minlength=k)
    every = np.bincount(trades["col"], minlength=k)
    assert (every > closed).sum() >= 2  # several columns really end in an open trade
    assert np.array_equal(counted["trades"], every) and np.array_equal(excluded["trades"], closed)
    won = np.bincount(trades["col"][(trades["status"] == 1) & (trades["pnl"] > 0)], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_allclose(excluded["win_rate"], won / closed, rtol=1e-12)
    assert excluded["trades"][-2] == 0 and np.isnan(excluded["win_rate"][-2])  # the held column: nothing closed
    assert np.array_equal(counted["total_return"], excluded["total_return"])  # equity marks it either way


def test_profit_factor_option_uses_returns_and_is_undefined_without_a_loss(hourly):
    entries, exits = _with_open_and_winning_columns(hourly)
    simulation, by_pnl = _metrics(hourly, entries, exits)
    _, by_returns = _metrics(hourly, entries, exits, profit_factor="returns")
    assert by_pnl["profit_factor"][-1] == np.inf and np.isnan(by_returns["profit_factor"][-1])  # one winning trade
    trades = simulation.trade_records
    for column in range(3):
        r = trades["return"][trades["col"] == column]
        assert (r < 0).any() and (r > 0).any()
        assert by_returns["profit_factor"][column] == pytest.approx(r[r > 0].sum() / -r[r < 0].sum(), rel=1e-12)
    assert not np.allclose(by_returns["profit_factor"][:3], by_pnl["profit_factor"][:3])


def test_exposure_option_counts_entry_to_exit_inclusive(hourly):
    entries, exits = _with_open_and_winning_columns(hourly)
    simulation, without = _metrics(hourly, entries, exits)
    _, with_exit = _metrics(hourly, entries, exits, exposure="include_exit_bar")
    n, trades = len(hourly["close"]), simulation.trade_records
    for column in range(entries.shape[1]):
        have_position = np.zeros(n, dtype=bool)  # backtesting.py's definition: entry bar .. exit bar inclusive
        for t in trades[trades["col"] == column]:
            have_position[t["entry_idx"] : (t["exit_idx"] + 1 if t["status"] == 1 else n)] = True
        assert with_exit["exposure"][column] == pytest.approx(have_position.mean(), abs=1e-15)
        closed = int(((trades["col"] == column) & (trades["status"] == 1)).sum())
        assert with_exit["exposure"][column] - without["exposure"][column] == pytest.approx(closed / n, abs=1e-12)
    assert (with_exit["exposure"] > without["exposure"]).any()


def test_atr_option_starts_like_talib():
    from fks_pipelines.lib.quant import indicators as ind

    rng = np.random.default_rng(7)
    close = 100 + np.cumsum(rng.normal(size=300))
    high, low = close + rng.random(300), close - rng.random(300)
    ours, talib_like = ind.atr(high, low, close, 14), ind.atr(high, low, close, 14, first_bar="talib")
    tr = ind.true_range(high, low, close)
    assert ours[13] == pytest.approx(tr[:14].mean(), rel=1e-12) and np.isnan(talib_like[13])
    assert talib_like[14] == pytest.approx(tr[1:15].mean(), rel=1e-12)  # seeded with bars 1..14, as TA-Lib
    assert abs(ours[14] - talib_like[14]) > 1e-6 and abs(ours[-1] - talib_like[-1]) < 1e-6 * ours[-1]
    with pytest.raises(ValueError, match="first_bar"):
        ind.atr(high, low, close, 14, first_bar="zero")

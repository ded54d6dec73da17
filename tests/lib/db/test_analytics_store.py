"""The analytics schema's store on the real server: signals and regimes replaced exactly in their scope, the
point-in-time strategy choice, and runs recorded with non-finite metrics as NULL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from fks_pipelines.lib.db import analytics
from fks_pipelines.lib.quant.backtest import METRICS

D0 = datetime(2024, 5, 1, tzinfo=UTC)


def day(i: int) -> datetime:
    return D0 + timedelta(days=i)


def signal(symbol: str, i: int, close: float = 100.0) -> analytics.Signal:
    indicators = {k: float(i) for k in analytics.INDICATORS} | {"close": close, "rsi_14": math.nan}
    signals = {"ma_cross": {"params": {"fast": 10, "slow": 30}, "entry": i % 2 == 0, "exit": False}}
    return analytics.Signal(day(i), symbol, day(i + 1) - timedelta(hours=1), indicators, signals)


def signals_table(conn) -> dict[tuple, tuple]:
    rows = conn.execute(
        "SELECT market, symbol, bucket, close, rsi_14, strategy_signals FROM analytics.signals"
    ).fetchall()
    return {r[:3]: r[3:] for r in rows}


def test_replace_signals_is_idempotent_and_touches_only_its_window_and_symbols(conn):
    everything = [signal(s, i) for s in ("BTCUSDT", "ETHUSDT") for i in range(5)]
    assert analytics.replace_signals(conn, "spot", ["BTCUSDT", "ETHUSDT"], day(0), day(5), everything) == 10
    analytics.replace_signals(conn, "um", ["BTCUSDT"], day(0), day(5), [signal("BTCUSDT", i) for i in range(5)])
    before = signals_table(conn)
    assert len(before) == 15
    assert before[("spot", "BTCUSDT", day(0))][1] is None  # NaN stored as NULL
    assert before[("spot", "BTCUSDT", day(0))][2]["ma_cross"]["entry"] is True

    # BTCUSDT on days 1 and 2 again, day 2 no longer produced: day 1 replaced, day 2 gone, nothing else moves.
    for _ in range(2):
        analytics.replace_signals(conn, "spot", ["BTCUSDT"], day(1), day(3), [signal("BTCUSDT", 1, close=7.0)])
        after = signals_table(conn)
        assert after[("spot", "BTCUSDT", day(1))][0] == 7.0
        assert ("spot", "BTCUSDT", day(2)) not in after
        unchanged = {
            k: v for k, v in before.items() if k not in {("spot", "BTCUSDT", day(1)), ("spot", "BTCUSDT", day(2))}
        }
        assert {k: after[k] for k in unchanged} == unchanged
        assert len(after) == 14


def test_replace_signals_refuses_rows_outside_its_scope_and_writes_nothing(conn):
    analytics.replace_signals(conn, "spot", ["BTCUSDT"], day(0), day(2), [signal("BTCUSDT", 0), signal("BTCUSDT", 1)])
    before = signals_table(conn)
    for stray in (signal("BTCUSDT", 2), signal("ETHUSDT", 0)):
        with pytest.raises(ValueError, match="outside the window"):
            analytics.replace_signals(
                conn, "spot", ["BTCUSDT"], day(0), day(2), [signal("BTCUSDT", 0, close=1.0), stray]
            )
    assert signals_table(conn) == before


def record(conn, run_id: str, symbol: str, decided_at: datetime, strategy: str, market: str = "spot") -> None:
    with conn.transaction():
        analytics.record_run(
            conn,
            run_id,
            fingerprint=None,
            code_version="test",
            bar_interval="1h",
            data_start=day(0),
            data_end=day(30),
            objective="sharpe",
            config={"objective": "sharpe", "seed": 1},
        )
        choice = analytics.StrategyChoice(
            symbol=symbol,
            strategy=strategy,
            params={"window": 14},
            objective="sharpe",
            oos_windows=3,
            oos_total_return=0.1,
            oos_sharpe=math.inf,
            oos_max_drawdown=-0.05,
            oos_trades=4.0,
            buy_and_hold_return=math.nan,
            decided_at=decided_at,
        )
        analytics.insert_choice(conn, run_id, market, choice)


def test_latest_choice_is_the_last_one_decided_strictly_before(conn):
    t1, t2 = day(10), day(20)
    record(conn, "run-1", "BTCUSDT", t1, "rsi_reversion")
    record(conn, "run-2", "BTCUSDT", t2, "ma_cross")
    record(conn, "run-3", "ETHUSDT", day(1), "macd_cross")
    record(conn, "run-4", "BTCUSDT", day(1), "bollinger_breakout", market="um")

    assert analytics.latest_choice(conn, "spot", "BTCUSDT", before=t1) is None
    assert analytics.latest_choice(conn, "spot", "BTCUSDT", before=t1 + timedelta(seconds=1)) == (
        "rsi_reversion",
        {"window": 14},
    )
    assert analytics.latest_choice(conn, "spot", "BTCUSDT", before=t2) == ("rsi_reversion", {"window": 14})
    assert analytics.latest_choice(conn, "spot", "BTCUSDT", before=day(40))[0] == "ma_cross"
    assert analytics.latest_choice(conn, "um", "BTCUSDT", before=day(40))[0] == "bollinger_breakout"
    assert analytics.latest_choice(conn, "spot", "SOLUSDT", before=day(40)) is None

    sharpe, bh, config = conn.execute(
        "SELECT c.oos_sharpe, c.buy_and_hold_return, r.config FROM analytics.strategy_choices c"
        " JOIN analytics.backtest_runs r USING (run_id) WHERE run_id = 'run-1'"
    ).fetchone()
    assert sharpe is None and bh is None and config == {"objective": "sharpe", "seed": 1}


def test_results_store_every_metric_with_non_finite_values_as_null(conn):
    # The store's columns are the metrics a backtest reports (the store imports no quant code to know them).
    assert analytics.RESULT_METRICS == METRICS
    table = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics'"
            " AND table_name = 'backtest_results' AND data_type = 'double precision' ORDER BY ordinal_position"
        ).fetchall()
    ]
    assert tuple(table) == analytics.RESULT_METRICS
    record(conn, "run-1", "BTCUSDT", day(10), "ma_cross")
    grid = [
        {"params": {"fast": f, "slow": 30}}
        | {m: float(i) for i, m in enumerate(METRICS)}
        | {"sharpe": math.nan if f == 5 else 1.5}
        for f in (5, 10)
    ]
    analytics.insert_results(conn, "run-1", "spot", "BTCUSDT", "ma_cross", day(0), day(30), grid)
    rows = conn.execute(
        "SELECT params, sample, window_index, sharpe, max_drawdown FROM analytics.backtest_results"
        " WHERE run_id = 'run-1' ORDER BY params->>'fast'"
    ).fetchall()
    assert rows == [
        ({"fast": 10, "slow": 30}, "full", None, 1.5, float(METRICS.index("max_drawdown"))),
        ({"fast": 5, "slow": 30}, "full", None, None, float(METRICS.index("max_drawdown"))),
    ]
    # A run goes with its results and choices.
    with conn.transaction():
        conn.execute("DELETE FROM analytics.backtest_runs WHERE run_id = 'run-1'")
    assert conn.execute("SELECT count(*) FROM analytics.backtest_results").fetchone()[0] == 0


def regimes(symbol: str, n: int, regime: str) -> tuple[list[analytics.RegimeDay], list[analytics.RegimeTransition]]:
    days = [analytics.RegimeDay(symbol, day(i), regime, {regime: 1.0}) for i in range(n)]
    return days, [analytics.RegimeTransition(symbol, regime, {regime: 0.7, "other": 0.3}, 1.0)]


def test_replace_regimes_replaces_the_whole_market_and_only_it(conn):
    analytics.replace_regimes(conn, "um", *regimes("BTCUSDT", 3, "down_low_vol"))
    analytics.replace_regimes(conn, "spot", *regimes("ETHUSDT", 5, "up_high_vol"))
    for _ in range(2):
        analytics.replace_regimes(conn, "spot", *regimes("BTCUSDT", 4, "sideways_low_vol"))
        counts = conn.execute(
            "SELECT market, symbol, regime, count(*) FROM analytics.market_regimes GROUP BY 1, 2, 3 ORDER BY 1, 2"
        ).fetchall()
        assert counts == [("spot", "BTCUSDT", "sideways_low_vol", 4), ("um", "BTCUSDT", "down_low_vol", 3)]
        transitions = conn.execute(
            "SELECT market, symbol, to_probabilities FROM analytics.regime_transitions ORDER BY 1"
        ).fetchall()
        assert transitions == [
            ("spot", "BTCUSDT", {"sideways_low_vol": 0.7, "other": 0.3}),
            ("um", "BTCUSDT", {"down_low_vol": 0.7, "other": 0.3}),
        ]


def test_a_run_holds_several_decisions_with_their_windows_dsr_pbo_and_cash(conn):
    """Migration 011: one row per decision (run, symbol, decided_at); cash is a choice with params {}; the test
    record stays NULL until known; a later run that re-decided the same time wins."""
    analytics.record_run(
        conn,
        "run-a",
        fingerprint=None,
        code_version="t",
        bar_interval="1h",
        data_start=day(0),
        data_end=day(30),
        objective="sharpe",
        config={},
    )
    base = dict(
        objective="sharpe",
        oos_windows=1,
        oos_total_return=0.02,
        oos_sharpe=1.0,
        oos_max_drawdown=-0.01,
        oos_trades=2.0,
        buy_and_hold_return=0.01,
        n_trials=3,
        configurations=457,
    )
    first = analytics.StrategyChoice(
        symbol="BTCUSDT",
        strategy="ma_cross",
        params={"fast": 5, "slow": 20},
        decided_at=day(12),
        candidate="ma_cross",
        in_sample_start=day(2),
        validation_start=day(9),
        dsr=0.7,
        pbo=0.4,
        test_end=day(19),
        test_total_return=-0.03,
        test_sharpe=-1.2,
        test_max_drawdown=-0.05,
        test_trades=2.0,
        test_buy_and_hold_return=0.01,
        **base,
    )
    second = first._replace(
        strategy="cash",
        params={},
        decided_at=day(19),
        in_sample_start=day(9),
        validation_start=day(16),
        dsr=math.nan,
        test_end=day(26),
        test_total_return=None,
        test_sharpe=None,
        test_max_drawdown=None,
        test_trades=None,
        test_buy_and_hold_return=None,
    )
    analytics.insert_choice(conn, "run-a", "spot", first)
    analytics.insert_choice(conn, "run-a", "spot", second)
    rows = conn.execute(
        "SELECT strategy, params, candidate, dsr, pbo, n_trials, configurations, test_total_return, test_end"
        " FROM analytics.strategy_choices WHERE run_id = 'run-a' ORDER BY decided_at"
    ).fetchall()
    assert rows == [
        ("ma_cross", {"fast": 5, "slow": 20}, "ma_cross", 0.7, 0.4, 3, 457, -0.03, day(19)),
        ("cash", {}, "ma_cross", None, 0.4, 3, 457, None, day(26)),
    ]
    assert analytics.latest_choice(conn, "spot", "BTCUSDT", before=day(19)) == ("ma_cross", {"fast": 5, "slow": 20})
    assert analytics.latest_choice(conn, "spot", "BTCUSDT", before=day(20)) == ("cash", {})
    # A later run re-deciding 2024-05-20 differently: its row is the one read.
    analytics.record_run(
        conn,
        "run-b",
        fingerprint=None,
        code_version="t",
        bar_interval="1h",
        data_start=day(0),
        data_end=day(31),
        objective="sharpe",
        config={},
    )
    analytics.insert_choice(conn, "run-b", "spot", second._replace(strategy="rsi_reversion", params={"window": 7}))
    assert analytics.latest_choice(conn, "spot", "BTCUSDT", before=day(20)) == ("rsi_reversion", {"window": 7})


def test_latest_choice_records_is_every_symbols_latest_choice_record_in_one_query(conn):
    record(conn, "run-1", "BTCUSDT", day(10), "rsi_reversion")
    record(conn, "run-2", "BTCUSDT", day(20), "ma_cross")
    record(conn, "run-3", "ETHUSDT", day(1), "macd_cross")
    record(conn, "run-4", "BTCUSDT", day(1), "bollinger_breakout", market="um")
    record(conn, "run-5", "ETHUSDT", day(1), "rsi_reversion")  # re-decided at the same time: the latest run wins
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    for before in (day(1), day(10), day(10) + timedelta(seconds=1), day(20), day(40)):
        batch = analytics.latest_choice_records(conn, "spot", symbols, before=before)
        one_by_one = {s: analytics.latest_choice_record(conn, "spot", s, before=before) for s in symbols}
        assert batch == {s: r for s, r in one_by_one.items() if r is not None}
    assert analytics.latest_choice_records(conn, "spot", symbols, before=day(15))["BTCUSDT"][0] == "rsi_reversion"
    assert set(analytics.latest_choice_records(conn, "spot", symbols, before=day(40))) == {"BTCUSDT", "ETHUSDT"}
    assert analytics.latest_choice_records(conn, "spot", symbols, before=day(40))["ETHUSDT"][0] == "rsi_reversion"
    assert analytics.latest_choice_records(conn, "um", symbols, before=day(40))["BTCUSDT"][0] == "bollinger_breakout"

"""Weekly choices over the whole history, decided incrementally, on real shared hourly bars (issue 21)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fks_pipelines.lib.db import analytics
from fks_pipelines.lib.quant import choice_updates
from fks_pipelines.lib.quant.backtest import BacktestConfig
from fks_pipelines.lib.quant.choice_updates import ChoiceSettings, update_choices
from fks_pipelines.lib.quant.rolling_choice import Windows
from fks_pipelines.lib.quant.strategy_files import load_strategies
from fks_pipelines.lib.quant.walk_forward import Search
from tests.lib.quant.real_hourly import load_marts

STRATEGIES = load_strategies()  # the built-ins

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START, END = datetime(2021, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)  # a year: a decision every week
SHORT_END = datetime(2021, 3, 1, tzinfo=UTC)
# Every column a reader uses (all but the run's bookkeeping times).
COLUMNS = (
    "run_id, market, symbol, decided_at, strategy, params, candidate, in_sample_start, validation_start, n_trials,"
    " dsr, pbo, configurations, oos_total_return, oos_sharpe, test_end, test_total_return, test_sharpe"
)


def choice_settings(min_dsr: float = 0.5, strategies=("ma_cross", "rsi_reversion")) -> ChoiceSettings:
    config = {"strategies": list(strategies), "min_dsr": min_dsr, "in_sample_days": 7, "validation_days": 3}
    return ChoiceSettings(
        strategies=[STRATEGIES[s] for s in strategies],
        windows=Windows(7 * 24, 3 * 24, 7 * 24),
        every=timedelta(days=7),
        objective="sharpe",
        min_dsr=min_dsr,
        backtest=BacktestConfig(freq="1h", workers=1),
        search=Search(),
        config=config,
        code_version="test",
    )


def expected_mondays() -> set[datetime]:
    """Every Monday 00:00 UTC with 10 days (in-sample + validation) of bars before it, up to the data's end."""
    first = START + timedelta(days=10)
    monday = first + timedelta(days=(7 - first.weekday()) % 7)
    out = set()
    while monday <= END:
        out.add(monday)
        monday += timedelta(days=7)
    return out


def table(conn) -> list[tuple]:
    return conn.execute(
        f"SELECT {COLUMNS} FROM analytics.strategy_choices ORDER BY run_id, symbol, decided_at"
    ).fetchall()


@pytest.fixture
def real_conn(conn, shared_data):
    load_marts(conn, shared_data, SYMBOLS, START, END)
    return conn


@pytest.fixture
def short_conn(conn, shared_data):
    """Two months only (the tests that run several times)."""
    load_marts(conn, shared_data, SYMBOLS, START, SHORT_END)
    return conn


def test_a_decision_every_monday_after_warm_up_per_symbol_and_a_rerun_adds_only_new_times(real_conn):
    conn = real_conn
    update = update_choices(conn, "spot", SYMBOLS, choice_settings(), lookahead_policy="off")
    for symbol in SYMBOLS:
        decided = {
            r[0]
            for r in conn.execute(
                "SELECT decided_at FROM analytics.strategy_choices WHERE symbol = %s", (symbol,)
            ).fetchall()
        }
        assert decided == expected_mondays(), symbol
    assert update.decided == {s: len(expected_mondays()) for s in SYMBOLS}
    # The test window is reported only when it has ended: the last Monday's (2021-12-27 + 7 days) has not.
    open_tests = conn.execute(
        "SELECT decided_at FROM analytics.strategy_choices WHERE test_total_return IS NULL"
    ).fetchall()
    assert {r[0] for r in open_tests} == {max(expected_mondays())}
    before = table(conn)

    # A later run with the same configuration and a week more of data: only the new Monday is decided, and
    # the last week's test window is now reported; nothing decided earlier changes.
    with conn.transaction():
        conn.execute("DELETE FROM marts.fct_ohlcv_1h")
    load_marts(conn, _shared(conn), SYMBOLS, START, END + timedelta(days=8))
    again = update_choices(conn, "spot", SYMBOLS, choice_settings(), lookahead_policy="off")
    assert again.decided == {s: 1 for s in SYMBOLS} and again.reported == {s: 1 for s in SYMBOLS}
    after = table(conn)
    unchanged = [r for r in before if r[3] != max(expected_mondays())]
    assert all(r in after for r in unchanged)
    assert len(after) == len(before) + len(SYMBOLS)


def _shared(conn):
    from tests.conftest import SHARED_DATA

    return SHARED_DATA


def test_a_changed_configuration_re_decides_and_every_reader_takes_the_latest_run(short_conn):
    conn = short_conn
    first = update_choices(conn, "spot", SYMBOLS, choice_settings(min_dsr=0.0), lookahead_policy="off")
    second = update_choices(conn, "spot", SYMBOLS, choice_settings(min_dsr=1.0), lookahead_policy="off")
    assert first.run_id != second.run_id and second.decided == first.decided  # everything re-decided
    # min_dsr 1.0 can never be reached: every choice of the second run is cash, while the first chose strategies.
    firsts = conn.execute(
        "SELECT count(*) FILTER (WHERE strategy <> 'cash') FROM analytics.strategy_choices WHERE run_id = %s",
        (first.run_id,),
    ).fetchone()[0]
    assert firsts > 0
    at = datetime(2021, 2, 20, tzinfo=UTC)
    _assert_readers_take(conn, at, "cash")
    # Re-running the first configuration makes it the latest again: readers follow (ordering by run_id would not).
    update_choices(conn, "spot", SYMBOLS, choice_settings(min_dsr=0.0), lookahead_policy="off")
    expected = analytics.latest_choices(conn, "spot", ["BTCUSDT"], at)["BTCUSDT"]
    assert expected["run_id"] == first.run_id


def _assert_readers_take(conn, at: datetime, strategy: str) -> None:
    from fks_pipelines.lib.recommend.inputs import market_inputs

    assert {r["strategy"] for r in analytics.latest_choices(conn, "spot", SYMBOLS, at).values()} == {strategy}
    assert {r[0] for r in analytics.latest_choice_records(conn, "spot", SYMBOLS, at).values()} == {strategy}
    inputs = market_inputs(conn, "spot", SYMBOLS, (at - timedelta(days=1)).date())
    assert {v["strategy"]["strategy"] for v in inputs.values()} == {strategy}
    documents = analytics.choices_decided(conn, "spot", SYMBOLS, at - timedelta(days=8), at)
    assert documents and {d["strategy"] for d in documents} == {strategy}


def test_a_run_killed_between_batches_resumes_to_the_same_table(short_conn, monkeypatch):
    conn = short_conn
    update_choices(conn, "spot", SYMBOLS, choice_settings(), lookahead_policy="off")
    whole = table(conn)
    decisions = conn.execute("SELECT count(*) FROM analytics.strategy_choices").fetchone()[0]
    with conn.transaction():
        conn.execute("DELETE FROM analytics.backtest_runs")
    calls = {"n": 0}
    write = choice_updates._write

    def dies_on_third_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        write(*args, **kwargs)

    monkeypatch.setattr(choice_updates, "_write", dies_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        update_choices(conn, "spot", SYMBOLS, choice_settings(), lookahead_policy="off")
    partial = conn.execute("SELECT count(*) FROM analytics.strategy_choices").fetchone()[0]
    assert 0 < partial < decisions
    monkeypatch.setattr(choice_updates, "_write", write)
    resumed = update_choices(conn, "spot", SYMBOLS, choice_settings(), lookahead_policy="off")
    assert sum(resumed.decided.values()) == decisions - partial
    assert table(conn) == whole
    # Killed after every decision was written but before the analysts' grid: the next run adds the grid alone.
    with conn.transaction():
        conn.execute("DELETE FROM analytics.backtest_results WHERE symbol = 'ETHUSDT'")
    again = update_choices(conn, "spot", SYMBOLS, choice_settings(), lookahead_policy="off")
    assert sum(again.decided.values()) == 0 and table(conn) == whole


def test_perturbing_prices_after_a_day_changes_no_choice_decided_up_to_it(short_conn):
    conn = short_conn
    update_choices(conn, "spot", SYMBOLS, choice_settings(), lookahead_policy="off")
    day = datetime(2021, 2, 8, tzinfo=UTC)  # a Monday: its own decision reads only bars before it
    choice_columns = "symbol, decided_at, strategy, params, candidate, dsr, pbo, oos_total_return"
    query = f"SELECT {choice_columns} FROM analytics.strategy_choices WHERE decided_at <= %s ORDER BY 1, 2"
    tests = "SELECT symbol, decided_at, test_total_return FROM analytics.strategy_choices WHERE test_end <= %s"
    before, before_tests = conn.execute(query, (day,)).fetchall(), conn.execute(tests, (day,)).fetchall()
    later = "SELECT symbol, test_buy_and_hold_return FROM analytics.strategy_choices WHERE decided_at = %s"
    later_before = conn.execute(later, (day,)).fetchall()
    with conn.transaction():
        conn.execute("DELETE FROM analytics.backtest_runs")
        conn.execute(
            "UPDATE marts.fct_ohlcv_1h SET close = close * 1.5, high = high * 1.5, low = low * 1.5,"
            " open = open * 1.5 WHERE bucket >= %s",
            (day,),
        )
    update_choices(conn, "spot", SYMBOLS, choice_settings(), lookahead_policy="off")
    assert conn.execute(query, (day,)).fetchall() == before and len(before) == 2 * 5
    assert conn.execute(tests, (day,)).fetchall() == before_tests
    # ... and the perturbation is seen after it: the test window starting at D reports other prices.
    assert conn.execute(later, (day,)).fetchall() != later_before

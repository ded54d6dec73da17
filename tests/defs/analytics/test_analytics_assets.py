"""The analytics group through Dagster: walk-forward choice, daily signals and regimes land in analytics."""

from __future__ import annotations

from datetime import UTC, date, timedelta

import psycopg
import pytest

from fks_pipelines.defs.analytics.resources import QuantResource
from fks_pipelines.defs.shared import MarketDataResource, PostgresResource
from fks_pipelines.lib.quant.strategy_files import load_strategies
from tests.defs.conftest import SYMBOLS

STRATEGIES = load_strategies()  # the built-ins


def test_one_word_names_the_layer():
    """Folder defs/analytics, group analytics, key prefix analytics (and the tables in schema analytics)."""
    from fks_pipelines.defs import analytics

    specs = [spec for a in analytics.defs.assets for spec in a.specs]
    assert {s.key.to_user_string() for s in specs} == {
        "analytics/strategy_choices",
        "analytics/signals",
        "analytics/market_regimes",
    }
    assert {s.group_name for s in specs} == {"analytics"}


def test_the_all_assets_job_runs_the_analytics_group(pipeline):
    _, result = pipeline
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"analytics/strategy_choices", "analytics/signals", "analytics/market_regimes"} <= materialized


def test_strategy_choices_are_rolling_nested_and_reported_with_dsr_and_pbo(pipeline):
    """24 days of bars: a decision each Monday with 7 in-sample + 3 validation days before it (2024-05-13 and
    2024-05-20); the first has its test week, the last not yet. Each row keeps its windows apart and carries its
    DSR and PBO; the materialization shows every decision as a table and the latest DSR/PBO as numbers.
    (2024-05-06 has only 5 days of bars before it.)"""
    url, result = pipeline
    (event,) = [m for m in result.asset_materializations_for_node("analytics__strategy_choices")]
    records = event.metadata["decisions"].value.records
    assert len(records) == event.metadata["decision_count"].value == 2 * len(SYMBOLS)
    assert {(r.data["symbol"], r.data["decided_at"]) for r in records} == {
        (s, d) for s in SYMBOLS for d in ("2024-05-13 00:00", "2024-05-20 00:00")
    }
    # data_range is the bars the decisions read: from the first decision's in-sample start (10 days before the
    # first Monday after warm-up) to the end of the last hourly bar.
    with psycopg.connect(url) as conn:
        first, last = conn.execute("SELECT min(bucket), max(bucket) FROM marts.fct_ohlcv_1h").fetchone()
    assert first.date() == date(2024, 5, 1)
    assert event.metadata["data_range"].value == (
        f"2024-05-03 00:00 .. {last.astimezone(UTC) + timedelta(hours=1):%Y-%m-%d %H:%M} UTC"
    )
    assert event.metadata["first_decision"].value == "2024-05-13 00:00"
    assert event.metadata["decided_this_run"].value == 2 * len(SYMBOLS)
    with psycopg.connect(url) as conn:
        run_id = event.metadata["run_id"].value
        (end,) = conn.execute("SELECT data_end FROM analytics.backtest_runs WHERE run_id = %s", (run_id,)).fetchone()
        choices = conn.execute(
            "SELECT symbol, strategy, params, candidate, in_sample_start, validation_start, decided_at, test_end,"
            " n_trials, dsr, pbo, configurations, test_total_return, test_buy_and_hold_return"
            " FROM analytics.strategy_choices WHERE run_id = %s ORDER BY symbol, decided_at",
            (run_id,),
        ).fetchall()
        assert [(c[0], c[6].date().isoformat()) for c in choices] == [
            (s, d) for s in SYMBOLS for d in ("2024-05-13", "2024-05-20")
        ]
        for symbol, strategy, params, candidate, is_start, val_start, decided_at, test_end, *rest in choices:
            n_trials, dsr, pbo, configurations, test_return, test_bh = rest
            assert candidate in ("ma_cross", "rsi_reversion", "bollinger_breakout")
            if strategy == "cash":
                assert params == {}
            else:
                assert strategy == candidate and set(params) == set(STRATEGIES[strategy].grid)
            assert val_start - is_start == timedelta(days=7) and decided_at - val_start == timedelta(days=3)
            assert test_end == decided_at + timedelta(days=7)
            assert n_trials == 3 and configurations == sum(
                len(STRATEGIES[n].parameter_sets()) for n in ("ma_cross", "rsi_reversion", "bollinger_breakout")
            )
            assert 0 <= pbo <= 1 and (dsr is None or 0 <= dsr <= 1)
            assert (test_return is None) == (test_end > end) and (test_bh is None) == (test_end > end)
            if strategy == "cash" and test_return is not None:
                assert test_return == 0.0
            record = next(
                r.data
                for r in records
                if r.data["symbol"] == symbol and r.data["decided_at"].startswith(f"{decided_at:%Y-%m-%d}")
            )
            assert record["strategy"] == strategy and record["pbo"] == pytest.approx(pbo)
        for symbol in SYMBOLS:
            latest = [c for c in choices if c[0] == symbol][-1]
            assert event.metadata[f"pbo_{symbol}"].value == pytest.approx(latest[10])
            assert (f"dsr_{symbol}" in event.metadata) == (latest[9] is not None)
            assert event.metadata[f"test_equity_{symbol}"].value.startswith(f"![{symbol}: test-window equity](data:")
            grid = conn.execute(
                "SELECT strategy, count(*), count(DISTINCT params) FROM analytics.backtest_results"
                " WHERE run_id = %s AND symbol = %s GROUP BY strategy",
                (run_id, symbol),
            ).fetchall()
            size = len(STRATEGIES[latest[3]].parameter_sets())
            assert grid == [(latest[3], size, size)]  # the latest candidate's grid over the latest decision's span


def test_signals_are_point_in_time_for_each_day(pipeline):
    url, _ = pipeline
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT bucket, symbol, as_of, rsi_14, strategy_signals FROM analytics.signals ORDER BY bucket"
        ).fetchall()
    assert len(rows) == 24 * len(SYMBOLS)
    for bucket, _symbol, as_of, _rsi, strategy_signals in rows:
        assert bucket <= as_of < bucket + timedelta(days=1)  # the day's last bar, nothing later
        assert set(strategy_signals) == set(STRATEGIES)
        assert all(isinstance(v["entry"], bool) for v in strategy_signals.values())
    assert all(0 <= r[3] <= 100 for r in rows[-4:])


def test_regimes_and_analyst_access(pipeline):
    url, _ = pipeline
    with psycopg.connect(url) as conn:
        regimes = conn.execute("SELECT symbol, regime, next_day_probabilities FROM analytics.market_regimes").fetchall()
        transitions = conn.execute(
            "SELECT symbol, sum(stationary_share) FROM analytics.regime_transitions GROUP BY symbol"
        ).fetchall()
        conn.execute("SET ROLE analyst")
        assert conn.execute("SELECT count(*) FROM analytics.strategy_choices").fetchone()[0] == 2 * len(SYMBOLS)
    assert regimes and all(abs(sum(p.values()) - 1) < 1e-9 for _, _, p in regimes)
    assert {s for s, _ in transitions} == set(SYMBOLS) and all(abs(t - 1) < 1e-9 for _, t in transitions)


def test_optuna_search_with_shorts_is_a_run_config_option(pipeline):
    """Materializing only strategy_choices (the marts exist) with Optuna and shorts: a new run is recorded
    with the configuration it used; a bad option fails with the field named."""
    from dagster import materialize

    from fks_pipelines.defs.analytics.assets import strategy_choices

    url, _ = pipeline
    resources = {
        "database": PostgresResource(url=url),
        "market_data": MarketDataResource(symbols=SYMBOLS[:1]),
        "quant": QuantResource(),
    }
    config = {"strategies": ["macd_cross"], "search": "optuna", "optuna_trials": 6, "seed": 5, "allow_shorts": True}
    result = materialize(
        [strategy_choices], resources=resources, run_config={"ops": {"analytics__strategy_choices": {"config": config}}}
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("analytics__strategy_choices")
    assert event.metadata["search"].value == "optuna (6 trials/window, seed 5)"
    assert event.metadata["direction"].value == "long and short"
    run_id = event.metadata["run_id"].value
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT config FROM analytics.backtest_runs WHERE run_id = %s", (run_id,)).fetchone()[0]
        decisions = conn.execute(
            "SELECT strategy, params, candidate FROM analytics.strategy_choices WHERE run_id = %s", (run_id,)
        ).fetchall()
    assert stored["search"] == "optuna" and stored["allow_shorts"] is True
    assert len(decisions) == 2 and all(candidate == "macd_cross" for _, _, candidate in decisions)
    for strategy, params, _ in decisions:
        assert params == {} if strategy == "cash" else strategy == "macd_cross" and STRATEGIES[strategy].valid(params)

    for bad, field in (
        ({"search": "annealing"}, "search"),
        ({"objective": "alpha"}, "objective"),
        ({"strategies": ["x"]}, "strategies"),
        ({"min_dsr": 1.5}, "min_dsr"),
        ({"pbo_blocks": 5}, "pbo_blocks"),
        ({"validation_days": 0}, "validation_days"),
    ):
        failed = materialize(
            [strategy_choices],
            resources=resources,
            raise_on_error=False,
            run_config={"ops": {"analytics__strategy_choices": {"config": bad}}},
        )
        assert not failed.success
        (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failure.step_failure_data.error.cause.message.startswith(f"ValueError: {field}")


def test_a_cash_choice_is_stored_as_cash_and_signals_tolerate_it(pipeline):
    """With a confidence no record reaches (min_dsr 1), every decision is cash with params {}; the daily signals
    then run on it with every strategy at its textbook parameters. The run is removed afterwards and the day's
    signals rebuilt, so the shared pipeline database is as it was."""
    from dagster import materialize

    from fks_pipelines.defs.analytics.assets import signals, strategy_choices

    url, _ = pipeline
    resources = {
        "database": PostgresResource(url=url),
        "market_data": MarketDataResource(symbols=SYMBOLS[:1]),
        "quant": QuantResource(),
    }
    config = {"strategies": ["rsi_reversion", "bollinger_breakout"], "min_dsr": 1.0}
    result = materialize(
        [strategy_choices], resources=resources, run_config={"ops": {"analytics__strategy_choices": {"config": config}}}
    )
    run_id = result.asset_materializations_for_node("analytics__strategy_choices")[0].metadata["run_id"].value
    try:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT strategy, params, candidate FROM analytics.strategy_choices WHERE run_id = %s", (run_id,)
            ).fetchall()
        assert len(rows) == 2 and all(s == "cash" and p == {} and c != "cash" for s, p, c in rows)
        assert materialize([signals], resources=resources, partition_key="2024-05-24").success
        with psycopg.connect(url) as conn:
            (day,) = conn.execute(
                "SELECT strategy_signals FROM analytics.signals WHERE symbol = %s AND bucket = '2024-05-24'",
                (SYMBOLS[0],),
            ).fetchone()
        assert {name: v["params"] for name, v in day.items()} == STRATEGIES.default_params()
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM analytics.backtest_runs WHERE run_id = %s", (run_id,))
        materialize([signals], resources=resources, partition_key="2024-05-24")

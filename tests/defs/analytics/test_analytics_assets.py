"""The analytics group through Dagster: walk-forward choice, daily signals and regimes land in analytics."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from fks_pipelines.defs.shared import MarketDataResource, PostgresResource
from fks_pipelines.lib.quant.strategies import STRATEGIES
from tests.defs.conftest import SYMBOLS


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


def test_strategy_choice_is_recorded_with_its_grid_and_plot(pipeline):
    url, result = pipeline
    (choice,) = [m for m in result.asset_materializations_for_node("analytics__strategy_choices")]
    assert "| symbol | strategy |" in choice.metadata["candidates"].value
    assert choice.metadata["oos_equity_BTCUSDT"].value.startswith(
        "![BTCUSDT: out-of-sample equity](data:image/png;base64,"
    )
    with psycopg.connect(url) as conn:
        run_id, start, end = conn.execute("SELECT run_id, data_start, data_end FROM analytics.backtest_runs").fetchone()
        choices = conn.execute(
            "SELECT symbol, strategy, params, oos_windows, decided_at FROM analytics.strategy_choices ORDER BY symbol"
        ).fetchall()
        assert [c[0] for c in choices] == SYMBOLS
        for symbol, strategy, params, windows, decided_at in choices:
            assert strategy in ("ma_cross", "rsi_reversion", "bollinger_breakout")
            assert set(params) == set(STRATEGIES[strategy].grid)
            assert windows >= 1 and start < decided_at < end
            grid = conn.execute(
                "SELECT count(*), count(DISTINCT params) FROM analytics.backtest_results"
                " WHERE run_id = %s AND symbol = %s",
                (run_id, symbol),
            ).fetchone()
            assert grid[0] == grid[1] == len(STRATEGIES[strategy].parameter_sets())


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
        assert conn.execute("SELECT count(*) FROM analytics.strategy_choices").fetchone()[0] == len(SYMBOLS)
    assert regimes and all(abs(sum(p.values()) - 1) < 1e-9 for _, _, p in regimes)
    assert {s for s, _ in transitions} == set(SYMBOLS) and all(abs(t - 1) < 1e-9 for _, t in transitions)


def test_optuna_search_with_shorts_is_a_run_config_option(pipeline):
    """Materializing only strategy_choices (the marts exist) with Optuna and shorts: a new run is recorded
    with the configuration it used; a bad option fails with the field named."""
    from dagster import materialize

    from fks_pipelines.defs.analytics.assets import strategy_choices

    url, _ = pipeline
    resources = {"database": PostgresResource(url=url), "market_data": MarketDataResource(symbols=SYMBOLS[:1])}
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
        (strategy, params) = conn.execute(
            "SELECT strategy, params FROM analytics.strategy_choices WHERE run_id = %s", (run_id,)
        ).fetchone()
    assert stored["search"] == "optuna" and stored["allow_shorts"] is True
    assert strategy == "macd_cross" and STRATEGIES["macd_cross"].valid(params)

    for bad, field in (
        ({"search": "annealing"}, "search"),
        ({"objective": "alpha"}, "objective"),
        ({"strategies": ["x"]}, "strategies"),
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

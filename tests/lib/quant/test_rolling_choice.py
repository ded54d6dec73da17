"""Rolling, nested strategy choice: anchored decision times, three windows kept apart, cash when nothing is
confidently better, and no decision touched by data at or after its decided_at."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from fks_pipelines.lib.quant.backtest import BacktestConfig
from fks_pipelines.lib.quant.rolling_choice import CASH, Windows, decide, decision_indices, rolling_choices
from fks_pipelines.lib.quant.strategy_files import load_strategies
from fks_pipelines.lib.sources.sample import sample_klines

STRATEGIES = load_strategies()  # the built-ins
STRATEGY_SET = [STRATEGIES[n] for n in ("rsi_reversion", "bollinger_reversion", "bollinger_breakout")]
WINDOWS = Windows(in_sample=5 * 24, validation=2 * 24, test=7 * 24, pbo_blocks=6)
EVERY = timedelta(days=7)
END = datetime(2024, 3, 1, tzinfo=UTC)
pytestmark = pytest.mark.slow  # five weekly decisions over three strategies' grids, several times


def _hourly(symbol: str, start: date, end: date) -> dict[str, np.ndarray]:
    hourly = (
        sample_klines([symbol], start, end)
        .group_by_dynamic("open_time", every="1h")
        .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last())
    )
    bars = {c: hourly[c].cast(pl.Float64).to_numpy() for c in ("open", "high", "low", "close")}
    return bars | {"bucket": hourly["open_time"].dt.replace_time_zone(None).to_numpy()}


@pytest.fixture(scope="module")
def hourly() -> dict[str, np.ndarray]:
    return _hourly("SOLUSDT", date(2024, 1, 20), date(2024, 3, 1))


@pytest.fixture(scope="module")
def baseline(hourly):
    return _run(hourly)


def _run(bars, min_dsr=0.0):
    return list(
        rolling_choices(
            bars,
            STRATEGY_SET,
            WINDOWS,
            every=EVERY,
            end=END,
            objective="sharpe",
            min_dsr=min_dsr,
            config=BacktestConfig(),
        )
    )


def _perturbed_from(bars, index: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in bars.items()}
    factor = np.exp(rng.normal(0, 0.03, len(out["close"]) - index))
    for k in ("open", "high", "low", "close"):
        out[k][index:] *= factor
    return out


def _decision_facts(decision):
    return (
        decision.strategy,
        decision.params,
        decision.candidate,
        decision.dsr,
        decision.pbo,
        decision.validation["total_return"],
        [(c["strategy"], c["params"], c["in_sample_score"]) for c in decision.candidates],
    )


def test_decisions_are_weekly_on_mondays_with_enough_history(hourly):
    times = decision_indices(hourly["bucket"], EVERY, END, WINDOWS.in_sample + WINDOWS.validation)
    stamps = [t for t, _ in times]
    assert stamps == [datetime(2024, 1, 29, tzinfo=UTC) + k * EVERY for k in range(5)]  # 2024-01-29: a Monday
    assert all(t.weekday() == 0 and t.hour == 0 for t in stamps)
    for at, index in times:  # the decision bar is the first at or after the decision time
        assert hourly["bucket"][index - 1] < np.datetime64(at.replace(tzinfo=None)) <= hourly["bucket"][index]
    # Every 3 days: anchored to the same Monday, three days apart.
    three = decision_indices(hourly["bucket"], timedelta(days=3), END, WINDOWS.in_sample + WINDOWS.validation)
    assert all((b - a) == timedelta(days=3) for (a, _), (b, _) in zip(three, three[1:], strict=False))
    assert (three[0][0] - datetime(1970, 1, 5, tzinfo=UTC)) % timedelta(days=3) == timedelta(0)


def test_rolling_choices_never_use_data_after_their_decided_at(hourly, baseline):
    """Perturbing every price from one decision time on changes no decision taken at or before it (only its
    test record, which is reported after the fact), and does change later decisions' inputs."""
    assert len(baseline) == 5
    cut_at, cut_decision, _ = baseline[2]
    changed = _run(_perturbed_from(hourly, cut_decision.decision_index))
    for (at, before, test_before), (at2, after, test_after) in zip(baseline, changed, strict=True):
        assert at == at2
        if at <= cut_at:
            assert _decision_facts(after) == _decision_facts(before)
        if at == cut_at and before.strategy != CASH:
            assert test_after["total_return"] != test_before["total_return"]  # the test window did see the change
    later = [(b, a) for (t, b, _), (_, a, _) in zip(baseline, changed, strict=True) if t > cut_at]
    assert any(a.validation["total_return"] != b.validation["total_return"] for b, a in later)


def test_three_windows_are_kept_apart(hourly):
    """Parameters come from the in-sample window only (perturbing the validation window leaves every
    candidate's parameters and in-sample score alone but changes its validation record); the strategy choice
    comes from data before the decision only (perturbing the test window changes nothing in the decision)."""
    bars = {k: v[: 24 * 20] for k, v in hourly.items()}
    decision = decide(bars, STRATEGY_SET, WINDOWS, objective="sharpe", min_dsr=0.0)
    validation_start = len(bars["close"]) - WINDOWS.validation
    moved = decide(_perturbed_from(bars, validation_start), STRATEGY_SET, WINDOWS, objective="sharpe", min_dsr=0.0)
    for a, b in zip(decision.candidates, moved.candidates, strict=True):
        assert (a["strategy"], a["params"], a["in_sample_score"]) == (b["strategy"], b["params"], b["in_sample_score"])
    assert [c["validation"]["total_return"] for c in decision.candidates] != [
        c["validation"]["total_return"] for c in moved.candidates
    ]
    assert decision.n_trials == len(STRATEGY_SET)
    assert decision.configurations == sum(len(s.parameter_sets()) for s in STRATEGY_SET)
    assert 0 <= decision.pbo <= 1 and 0 <= decision.dsr <= 1


def test_cash_unless_the_winner_beats_it_with_enough_confidence(hourly, baseline):
    strict = _run(hourly, min_dsr=1.0)  # no finite record reaches DSR 1
    assert {d.strategy for _, d, _ in strict} == {CASH}
    assert all(d.params == {} and d.candidate in STRATEGIES for _, d, _ in strict)
    for _, _, test in strict:
        if test is not None:  # cash earns nothing and trades nothing on the test window
            assert test["total_return"] == 0.0 and test["trades"] == 0.0
            assert np.all(test["equity"] == BacktestConfig().init_cash)
    loose = baseline  # min_dsr 0
    for _, d, _ in loose:  # with no confidence required, the rule is "a positive validation return after fees"
        assert (d.strategy != CASH) == (d.validation["total_return"] > 0)
        if d.strategy != CASH:
            assert d.strategy == d.candidate and d.params and STRATEGIES[d.strategy].valid(d.params)
    # The confidence rule bites: a middle threshold keeps exactly the decisions whose DSR reaches it.
    middle = _run(hourly, min_dsr=0.5)
    for (_, a, _), (_, b, _) in zip(loose, middle, strict=True):
        assert (b.strategy != CASH) == (a.strategy != CASH and a.dsr >= 0.5)


def test_the_latest_decision_has_no_test_record_until_its_window_ends(hourly, baseline):
    *complete, (_, last, last_test) = baseline
    assert last_test is None  # decided 2024-02-26: its week ends after the data
    assert all(test is not None and len(test["equity"]) == WINDOWS.test for _, _, test in complete)
    with pytest.raises(ValueError, match="fewer than"):
        decide({k: v[:100] for k, v in hourly.items()}, STRATEGY_SET, WINDOWS, objective="sharpe", min_dsr=0.5)

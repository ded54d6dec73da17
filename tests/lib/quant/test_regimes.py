"""The Markov regime model: labels are point-in-time, the estimates recover a known chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from fks_pipelines.lib.quant.regimes import (
    REGIMES,
    label_regimes,
    regime_report,
    stationary_distribution,
    transition_matrix,
)


def test_transition_matrix_recovers_a_known_chain():
    rng = np.random.default_rng(11)
    true = rng.dirichlet(np.ones(len(REGIMES)) * 2, size=len(REGIMES))
    state, labels = 0, []
    for _ in range(60_000):
        labels.append(REGIMES[state])
        state = rng.choice(len(REGIMES), p=true[state])
    estimate = transition_matrix(np.array(labels, dtype=object), smoothing=0.0)
    np.testing.assert_allclose(estimate, true, atol=0.02)
    pi = stationary_distribution(true)
    np.testing.assert_allclose(pi @ true, pi, atol=1e-12)
    assert pi.sum() == pytest.approx(1.0) and (pi > 0).all()
    counts = np.array([labels.count(r) for r in REGIMES]) / len(labels)
    np.testing.assert_allclose(counts, pi, atol=0.02)


def test_labels_follow_trend_and_volatility():
    rng = np.random.default_rng(5)
    calm_up = np.cumsum(rng.normal(0.01, 0.005, 80))
    wild_down = calm_up[-1] + np.cumsum(rng.normal(-0.02, 0.04, 80))
    labels = label_regimes(np.exp(np.concatenate([calm_up, wild_down])))
    assert labels[:20].tolist() == [None] * 20

    def most_common(part):
        values = [v for v in part if v is not None]
        return max(set(values), key=values.count)

    # Volatility is relative to the median so far: within the calm stretch about half its days are "high";
    # once the wild stretch starts, nearly all are.
    assert all(v.startswith("up_") for v in labels[20:80])
    assert most_common(labels[110:160]) == "down_high_vol"
    high_share = lambda part: np.mean([v.endswith("high_vol") for v in part])  # noqa: E731
    assert high_share(labels[110:160]) > 0.9 > high_share(labels[20:80])


def test_labels_and_probabilities_are_point_in_time():
    rng = np.random.default_rng(9)
    close = np.exp(np.cumsum(rng.normal(0, 0.03, 300)))
    changed = close.copy()
    changed[200:] *= np.exp(rng.normal(0, 0.2, 100))
    assert label_regimes(close)[:200].tolist() == label_regimes(changed)[:200].tolist()
    days = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(300)]
    a, _ = regime_report(pl.DataFrame({"symbol": "X", "bucket": days, "close": close}))
    b, _ = regime_report(pl.DataFrame({"symbol": "X", "bucket": days, "close": changed}))
    cut = days[199]
    assert a.filter(pl.col("bucket") <= cut).equals(b.filter(pl.col("bucket") <= cut))


def test_report_rows_are_probability_distributions():
    rng = np.random.default_rng(2)
    days = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(200)]
    frame = pl.DataFrame(
        {"symbol": ["A"] * 200 + ["B"] * 200, "bucket": days * 2, "close": np.exp(np.cumsum(rng.normal(0, 0.03, 400)))}
    )
    per_day, matrices = regime_report(frame)
    probs = per_day.select([f"p_next_{r}" for r in REGIMES]).to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert set(per_day["regime"]) <= set(REGIMES)
    assert matrices.height == 2 * len(REGIMES)
    for _, group in matrices.group_by("symbol"):
        assert group["stationary_share"].sum() == pytest.approx(1.0)

"""Deflated Sharpe Ratio and PBO against the paper's worked example and an independent implementation here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from fks_pipelines.lib.quant.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_ratio,
)


def test_deflated_sharpe_ratio_reproduces_the_papers_worked_example():
    """Bailey & López de Prado (2014), section "A numerical example": 100 trials with annualised Sharpe variance
    0.5, the best at an annualised 2.5 over 1,250 daily returns with skewness -3 and kurtosis 10: SR0 = 0.1132
    (per day) and DSR = 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # More trials, the same record: a higher bar and less confidence.
    assert probabilistic_sharpe_ratio(2.5 / math.sqrt(250), expected_max_sharpe(1000, 0.5 / 250), 1250, -3, 10) < dsr


def _independent_dsr(returns: np.ndarray, n_trials: int, variance: float) -> float:
    """Eq. 6 and the PSR written out with scipy's moments and normal distribution."""
    sr = returns.mean() / returns.std(ddof=1)
    gamma = np.euler_gamma
    sr0 = math.sqrt(variance) * (
        (1 - gamma) * stats.norm.ppf(1 - 1 / n_trials) + gamma * stats.norm.ppf(1 - 1 / (n_trials * math.e))
    )
    skew, kurt = stats.skew(returns), stats.kurtosis(returns, fisher=False)
    z = (sr - sr0) * math.sqrt(len(returns) - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return float(stats.norm.cdf(z))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deflated_sharpe_ratio_matches_an_independent_implementation(seed):
    rng = np.random.default_rng(seed)
    returns = rng.standard_t(4, 500) * 0.01 + 0.002
    for n_trials, variance in ((5, 0.004), (50, 0.01), (2, 0.0001)):
        expected = _independent_dsr(returns, n_trials, variance)
        assert deflated_sharpe_ratio(returns, n_trials, variance) == pytest.approx(expected, rel=1e-9)
    # One trial, or no dispersion among the trials: nothing to deflate, DSR is the probabilistic Sharpe ratio vs 0.
    skew, kurt = stats.skew(returns), stats.kurtosis(returns, fisher=False)
    psr = probabilistic_sharpe_ratio(sharpe_ratio(returns), 0.0, len(returns), skew, kurt)
    assert deflated_sharpe_ratio(returns, 1, 0.01) == pytest.approx(psr)
    assert math.isnan(deflated_sharpe_ratio(np.zeros(50), 5, 0.01))  # a record that never varies


def _independent_pbo(returns: np.ndarray, n_blocks: int) -> float:
    """CSCV spelled out as in the paper's steps: submatrices, combinations, IS-best, its OOS relative rank
    (scipy's average ranks), the logit, the share of logits <= 0."""
    t, n = returns.shape
    rows = returns[t - (t // n_blocks) * n_blocks :]
    subs = np.array_split(rows, n_blocks)
    count = total = 0
    for train in itertools.combinations(range(n_blocks), n_blocks // 2):
        j = np.vstack([subs[i] for i in train])
        jc = np.vstack([subs[i] for i in range(n_blocks) if i not in train])

        def sharpe(m):
            sd = m.std(axis=0, ddof=1)
            return np.array([m[:, k].mean() / sd[k] if sd[k] > 0 else 0.0 for k in range(n)])

        best = int(np.argmax(sharpe(j)))
        omega = stats.rankdata(sharpe(jc))[best] / (n + 1)
        total += 1
        count += math.log(omega / (1 - omega)) <= 0
    return count / total


@pytest.mark.parametrize(("seed", "blocks"), [(0, 8), (1, 6), (2, 10), (3, 4)])
def test_pbo_matches_an_independent_cscv(seed, blocks):
    rng = np.random.default_rng(seed)
    returns = rng.normal(0, 0.01, (403, 25)) + rng.normal(0, 0.0005, 25)  # some configurations slightly better
    result = probability_of_backtest_overfitting(returns, blocks)
    assert result.splits == math.comb(blocks, blocks // 2)
    assert result.pbo == pytest.approx(_independent_pbo(returns, blocks))


def test_pbo_is_zero_for_a_real_edge_and_one_for_a_selection_that_always_overfits():
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 0.01, (320, 30))
    edge = noise.copy()
    edge[:, 3] += 0.01  # one configuration better in every block
    assert probability_of_backtest_overfitting(edge, 8).pbo == 0.0
    # Two configurations that take turns: whichever wins the in-sample half loses the out-of-sample half.
    wiggle = rng.normal(0, 0.01, 80)
    a = np.concatenate([0.01 + wiggle, -0.01 + wiggle])  # gains in the first block, losses in the second
    turns = np.column_stack([a, -a])
    assert probability_of_backtest_overfitting(turns, 2).pbo == 1.0
    # Pure noise: about half the splits overfit.
    assert 0.2 < probability_of_backtest_overfitting(noise, 8).pbo < 0.8


def test_pbo_refuses_what_it_cannot_split():
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(np.zeros((100, 3)), 5)
    with pytest.raises(ValueError, match="two configurations"):
        probability_of_backtest_overfitting(np.zeros((100, 1)), 4)
    with pytest.raises(ValueError, match="too few"):
        probability_of_backtest_overfitting(np.zeros((10, 3)), 8)

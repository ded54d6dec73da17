"""How much of a chosen strategy's record is luck: the Deflated Sharpe Ratio and the Probability of Backtest
Overfitting.

Both work on per-bar returns and per-bar (not annualised) Sharpe ratios.

- **Deflated Sharpe Ratio** (Bailey & López de Prado, "The Deflated Sharpe Ratio", 2014): the probability that
  the true Sharpe ratio of the selected record exceeds the Sharpe ratio the best of ``n_trials`` skill-less
  trials would show by luck alone (``expected_max_sharpe``), given the record's length, skewness and kurtosis.
  Near 1: the record is unlikely to be the luck of the selection; 0.5: no better than the expected best of
  ``n_trials`` coin flips.
- **Probability of Backtest Overfitting** (Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest
  Overfitting", 2015), by combinatorially symmetric cross-validation (CSCV): the returns of every configuration
  the selection could pick are cut into ``n_blocks`` time blocks; for each way of taking half of the blocks as
  in-sample (the rest out-of-sample), the in-sample best configuration's out-of-sample rank is recorded; PBO is
  the share of splits where it ranks at or below the out-of-sample median (logit <= 0). Near 0: picking the
  in-sample best tends to pick an out-of-sample winner; 0.5 or more: the selection is as good as random.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def sharpe_ratio(returns: np.ndarray) -> float:
    """Per-bar Sharpe ratio (mean / standard deviation, ddof 1) of a returns series; 0 when it never varies
    (a configuration that never trades earns cash's Sharpe), NaN with fewer than two returns."""
    returns = np.asarray(returns, dtype=float)
    if len(returns) < 2:
        return float("nan")
    sd = returns.std(ddof=1)
    return float(returns.mean() / sd) if sd > 0 else 0.0


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR0: the expected maximum of ``n_trials`` Sharpe ratios drawn with variance ``sharpe_variance`` around a
    true Sharpe ratio of zero (Bailey & López de Prado 2014, eq. 6, via the false strategy theorem). 0 for a
    single trial or no dispersion: nothing was selected."""
    if n_trials <= 1 or not sharpe_variance > 0:
        return 0.0
    g = EULER_GAMMA
    z1 = _NORMAL.inv_cdf(1 - 1 / n_trials)
    z2 = _NORMAL.inv_cdf(1 - 1 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1 - g) * z1 + g * z2)


def probabilistic_sharpe_ratio(sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """P(true Sharpe > ``benchmark``) for an observed per-bar ``sharpe`` over ``n_obs`` returns with the given
    skewness and (non-excess, normal = 3) kurtosis (Bailey & López de Prado 2012). NaN when undefined."""
    denominator = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if n_obs < 2 or not math.isfinite(sharpe) or not denominator > 0:
        return float("nan")
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denominator))


def moments(returns: np.ndarray) -> tuple[float, float]:
    """(skewness, non-excess kurtosis) of a returns series (population moments, as in the paper)."""
    returns = np.asarray(returns, dtype=float)
    centred = returns - returns.mean()
    sd = np.sqrt(np.mean(centred**2))
    if not sd > 0:
        return float("nan"), float("nan")
    return float(np.mean(centred**3) / sd**3), float(np.mean(centred**4) / sd**4)


def deflated_sharpe_ratio(returns: np.ndarray, n_trials: int, sharpe_variance: float) -> float:
    """DSR of the selected record ``returns`` (per-bar), deflated for ``n_trials`` trials whose per-bar Sharpe
    ratios have variance ``sharpe_variance``. NaN for a record that never varies (nothing to judge)."""
    returns = np.asarray(returns, dtype=float)
    skew, kurtosis = moments(returns)
    if not math.isfinite(skew):
        return float("nan")
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe_ratio(returns), benchmark, len(returns), skew, kurtosis)


@dataclass(frozen=True)
class Overfitting:
    pbo: float  # share of CSCV splits whose in-sample best ranks at or below the out-of-sample median
    logits: np.ndarray  # one per split: log(w / (1 - w)), w the relative out-of-sample rank in (0, 1)
    splits: int


def _column_sharpes(block: np.ndarray) -> np.ndarray:
    mean = block.mean(axis=0)
    sd = block.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, mean / sd, 0.0)


def probability_of_backtest_overfitting(returns: np.ndarray, n_blocks: int = 8) -> Overfitting:
    """PBO by CSCV of "pick the configuration with the best Sharpe ratio" over ``returns`` (bars x
    configurations). The oldest ``len % n_blocks`` rows are dropped so the blocks are equal. Out-of-sample ranks
    are 1 (worst) .. N (best), ties averaged; w = rank / (N + 1)."""
    returns = np.asarray(returns, dtype=float)
    if returns.ndim != 2 or returns.shape[1] < 2:
        raise ValueError("PBO needs a bars x configurations matrix with at least two configurations")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be an even number >= 2, not {n_blocks}")
    size = returns.shape[0] // n_blocks
    if size < 2:
        raise ValueError(f"{returns.shape[0]} bars are too few for {n_blocks} blocks of at least two bars")
    blocks = returns[returns.shape[0] - size * n_blocks :].reshape(n_blocks, size, returns.shape[1])
    n = returns.shape[1]
    logits = []
    for chosen in itertools.combinations(range(n_blocks), n_blocks // 2):
        rest = [b for b in range(n_blocks) if b not in chosen]
        in_sample = _column_sharpes(blocks[list(chosen)].reshape(-1, n))
        out_of_sample = _column_sharpes(blocks[rest].reshape(-1, n))
        best = int(np.argmax(in_sample))
        below = np.sum(out_of_sample < out_of_sample[best])
        ties = np.sum(out_of_sample == out_of_sample[best])
        rank = below + (ties + 1) / 2  # average rank among ties, 1-based
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    values = np.array(logits)
    return Overfitting(float(np.mean(values <= 0)), values, len(values))

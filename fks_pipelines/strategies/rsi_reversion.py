"""Buy oversold (RSI crosses below ``lower``), sell overbought (RSI crosses above ``upper``)."""

import numpy as np
import polars as pl

from fks_pipelines.lib.quant import indicators as ind
from fks_pipelines.lib.quant.strategies import crossed_above, crossed_below, indicator

GRID = {"window": [7, 14, 21], "lower": [20, 25, 30, 35], "upper": [65, 70, 75, 80]}
DEFAULTS = {"window": 14, "lower": 30, "upper": 70}


def warmup(params: dict) -> int:
    return 3 * params["window"]  # lower and upper are levels, not windows


def signals(bars: pl.DataFrame, window: int, lower: float, upper: float) -> tuple[np.ndarray, np.ndarray]:
    r = indicator(bars, ind.rsi, window)
    return crossed_below(r, np.full_like(r, lower)), crossed_above(r, np.full_like(r, upper))

"""Long when the fast SMA crosses above the slow one; out when it crosses back below."""

import numpy as np
import polars as pl

from fks_pipelines.lib.quant import indicators as ind
from fks_pipelines.lib.quant.strategies import crossed_above, crossed_below, indicator

GRID = {"fast": [5, 10, 15, 20, 25, 30, 40, 50, 60, 80], "slow": list(range(20, 440, 10))}  # 397 valid pairs
DEFAULTS = {"fast": 20, "slow": 50}


def valid(params: dict) -> bool:
    return params["fast"] < params["slow"]


def warmup(params: dict) -> int:
    return 3 * max(params["fast"], params["slow"])


def signals(bars: pl.DataFrame, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    f, s = indicator(bars, ind.sma, fast), indicator(bars, ind.sma, slow)
    return crossed_above(f, s), crossed_below(f, s)

"""Buy a close below the lower band, sell at the middle band."""

import numpy as np
import polars as pl

from fks_pipelines.lib.quant import indicators as ind
from fks_pipelines.lib.quant.strategies import crossed_above, crossed_below, indicator

GRID = {"window": [10, 20, 40], "k": [1.5, 2.0, 2.5, 3.0]}
DEFAULTS = {"window": 20, "k": 2.0}


def warmup(params: dict) -> int:
    return 3 * params["window"]


def signals(bars: pl.DataFrame, window: int, k: float) -> tuple[np.ndarray, np.ndarray]:
    lower, middle, _ = indicator(bars, ind.bollinger, window, k)
    close = bars["close"].to_numpy()
    return crossed_below(close, lower), crossed_above(close, middle)

"""Long when the MACD line crosses above its signal line; out when it crosses back below."""

import numpy as np
import polars as pl

from fks_pipelines.lib.quant import indicators as ind
from fks_pipelines.lib.quant.strategies import crossed_above, crossed_below, indicator

GRID = {"fast": [8, 12, 16], "slow": [21, 26, 34], "signal": [5, 9, 13]}
DEFAULTS = {"fast": 12, "slow": 26, "signal": 9}


def valid(params: dict) -> bool:
    return params["fast"] < params["slow"]


def warmup(params: dict) -> int:
    return 3 * max(params["fast"], params["slow"], params["signal"])


def signals(bars: pl.DataFrame, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray]:
    line, sig, _ = indicator(bars, ind.macd, fast, slow, signal)
    return crossed_above(line, sig), crossed_below(line, sig)

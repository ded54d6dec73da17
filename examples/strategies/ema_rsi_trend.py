"""Trend filter with a momentum trigger: in an uptrend (fast EMA above slow EMA), buy when RSI crosses up
through ``trigger``; sell when the trend turns (fast EMA crosses below slow).

Shows how a strategy file reuses the platform's indicators (``fks_pipelines.lib.quant.indicators``: the same
EMA and RSI the built-ins use) and its cross helpers. Every value at bar t uses bars <= t only.
"""

import numpy as np
import polars as pl

from fks_pipelines.lib.quant import indicators as ind
from fks_pipelines.lib.quant.strategies import crossed_above, crossed_below

GRID = {"fast": [10, 20, 30], "slow": [50, 100, 200], "trigger": [45, 50, 55]}
DEFAULTS = {"fast": 20, "slow": 100, "trigger": 50}


def signals(bars: pl.DataFrame, fast: int, slow: int, trigger: float) -> tuple[np.ndarray, np.ndarray]:
    close = bars["close"].to_numpy()
    fast_ema, slow_ema = ind.ema(close, fast), ind.ema(close, slow)
    rsi = ind.rsi(close, 14)
    with np.errstate(invalid="ignore"):
        uptrend = fast_ema > slow_ema
    entries = uptrend & crossed_above(rsi, np.full_like(rsi, trigger))
    exits = crossed_below(fast_ema, slow_ema)
    return entries, exits

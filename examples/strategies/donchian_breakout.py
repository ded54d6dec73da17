"""Donchian breakout: buy a close above the highest high of the previous ``entry`` bars, sell a close below
the lowest low of the previous ``exit`` bars (the turtle traders' channel rule).

Copy this file into the folder ``$FKS_STRATEGIES_DIR`` names (unset: no user strategies), then:
    fks backtest --strategy donchian_breakout --timerange 20240101-20240301
    fks lookahead-analysis --strategy donchian_breakout
"""

import numpy as np
import polars as pl

GRID = {"entry": [20, 55, 100], "exit": [10, 20, 50]}
DEFAULTS = {"entry": 20, "exit": 10}


def signals(bars: pl.DataFrame, entry: int, exit: int) -> tuple[np.ndarray, np.ndarray]:
    # shift(1): the channel of the bars *before* t, so bar t's close is compared with what was known at t.
    channel = bars.select(
        upper=pl.col("high").rolling_max(entry).shift(1),
        lower=pl.col("low").rolling_min(exit).shift(1),
    )
    close = bars["close"]
    entries = (close > channel["upper"]).fill_null(False).to_numpy()
    exits = (close < channel["lower"]).fill_null(False).to_numpy()
    return entries, exits

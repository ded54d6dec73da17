"""Choosing what to trade: walk-forward every strategy, keep the one whose out-of-sample record is best,
and describe the current indicator and signal state (all point-in-time)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from fks_pipelines.lib.quant import indicators as ind
from fks_pipelines.lib.quant.backtest import BacktestConfig
from fks_pipelines.lib.quant.strategies import Bars, Strategy
from fks_pipelines.lib.quant.strategy_files import StrategyFileError
from fks_pipelines.lib.quant.walk_forward import Search, walk_forward


def curve_metrics(curve: np.ndarray, bars_per_year: float) -> dict[str, float]:
    """Return, Sharpe, Sortino, max drawdown and Calmar of an equity curve."""
    if len(curve) < 2:
        return {
            "total_return": 0.0,
            "sharpe": float("nan"),
            "sortino": float("nan"),
            "max_drawdown": 0.0,
            "calmar": float("nan"),
        }
    returns = np.diff(curve) / curve[:-1]
    total = curve[-1] / curve[0] - 1
    sd = returns.std(ddof=1)
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    peak = np.maximum.accumulate(curve)
    max_dd = float((curve / peak - 1).min())
    years = len(returns) / bars_per_year
    cagr = (1 + total) ** (1 / years) - 1 if years > 0 and total > -1 else float("nan")
    return {
        "total_return": float(total),
        "sharpe": float(returns.mean() / sd * np.sqrt(bars_per_year)) if sd > 0 else float("nan"),
        "sortino": float(returns.mean() / downside * np.sqrt(bars_per_year)) if downside > 0 else float("nan"),
        "max_drawdown": max_dd,
        "calmar": float(cagr / abs(max_dd)) if max_dd < 0 else float("nan"),
        "return_over_drawdown": float(total / abs(max_dd)) if max_dd < 0 else float("nan"),
    }


@dataclass(frozen=True)
class StrategyChoice:
    strategy: str
    params: dict
    objective: str
    oos: dict[str, float]
    windows: pl.DataFrame
    curve: np.ndarray
    decision_index: int


def choose_strategy(
    bars: Bars,
    strategies: list[Strategy],
    *,
    objective: str,
    in_sample: int,
    out_of_sample: int,
    bars_per_year: float,
    config: BacktestConfig = BacktestConfig(),
    search: Search = Search(),
) -> tuple[StrategyChoice | None, list[StrategyChoice]]:
    """Walk every strategy forward; the winner has the best objective on its chained out-of-sample curve.
    Its parameters are those chosen in-sample for the last window (what it would trade next)."""
    candidates = []
    for strategy in strategies:
        windows, curve = walk_forward(
            bars,
            strategy,
            strategy.parameter_sets(),
            in_sample=in_sample,
            out_of_sample=out_of_sample,
            objective=objective,
            config=config,
            search=search,
        )
        if windows.height == 0:
            continue
        oos = curve_metrics(curve, bars_per_year) | {"trades": float(windows["oos_trades"].sum())}
        candidates.append(
            StrategyChoice(
                strategy.name, windows["params"][-1], objective, oos, windows, curve, int(windows["decision"][-1])
            )
        )
    if not candidates:
        return None, []
    score = lambda c: c.oos.get(objective) if np.isfinite(c.oos.get(objective, np.nan)) else -np.inf  # noqa: E731
    return max(candidates, key=score), candidates


def indicator_state(bars: Bars) -> dict[str, float]:
    """The latest value of each indicator (NaN while warming up)."""
    close, high, low = bars["close"], bars["high"], bars["low"]
    macd_line, macd_signal, macd_hist = ind.macd(close)
    lower, middle, upper = ind.bollinger(close, 20, 2.0)
    values = {
        "close": close,
        "rsi_14": ind.rsi(close, 14),
        "macd": macd_line,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "bb_lower": lower,
        "bb_middle": middle,
        "bb_upper": upper,
        "sma_20": ind.sma(close, 20),
        "sma_50": ind.sma(close, 50),
        "ema_20": ind.ema(close, 20),
        "atr_14": ind.atr(high, low, close, 14),
    }
    return {k: (float(v[-1]) if len(v) else float("nan")) for k, v in values.items()}


def signal_state(
    bars: Bars, strategies: dict[str, tuple[Strategy, dict]], failed: dict[str, str] | None = None
) -> dict[str, dict]:
    """Entry/exit of each strategy (with its parameters) on the latest bar. With ``failed`` given, a strategy
    whose ``signals`` raises, exits or runs past its time limit (a :class:`StrategyFileError`) is left out and its
    one-line error recorded there by name; a strategy already in ``failed`` is not called again."""
    out = {}
    for name, (strategy, params) in strategies.items():
        if failed is not None and name in failed:
            continue
        try:
            entries, exits = strategy.signals(bars, **params)
        except StrategyFileError as exc:
            if failed is None:
                raise
            failed[name] = str(exc)
            continue
        out[name] = {
            "params": params,
            "entry": bool(entries[-1]) if len(entries) else False,
            "exit": bool(exits[-1]) if len(exits) else False,
        }
    return out

"""One strategy's backtest as a person reads it (``fks backtest``, ``fks plot``): the metrics per symbol and
over all symbols, every trade with its exit reason, and freqtrade-style text tables. The numbers come from
the code paths the assets use (``backtest.portfolio`` and ``backtest.portfolio_metrics``); nothing here
computes a metric a second way, except the all-symbol summary, which sums or averages the per-symbol rows
and says which."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fks_pipelines.lib.quant.backtest import (
    METRICS,
    OPEN_AT_END,
    BacktestConfig,
    exit_reasons,
    portfolio,
    portfolio_metrics,
    stop_columns,
)
from fks_pipelines.lib.quant.strategies import Bars, Strategy

JSON_METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "trades", "win_rate", "profit_factor", "exposure")


@dataclass
class SymbolBacktest:
    symbol: str
    metrics: dict[str, float]
    trades: list[dict]
    equity: np.ndarray
    entries: np.ndarray
    exits: np.ndarray
    bars: Mapping[str, np.ndarray] = field(repr=False)


def _time(bars: Bars, i: int) -> str:
    times = bars.get("bucket") if isinstance(bars, Mapping) else None
    if times is None or i < 0 or i >= len(times):
        return str(i)
    return str(np.datetime_as_string(np.asarray(times[i]).astype("datetime64[s]"), unit="m")) + "Z"


def backtest_symbol(
    symbol: str, bars: Bars, strategy: Strategy, params: Mapping, config: BacktestConfig
) -> SymbolBacktest:
    """One parameter set on one symbol's bars: signals at bar t fill at bar t+1's open, stops (the strategy
    file's) within the bar (backtest.portfolio)."""
    entries, exits = strategy.signals(bars, **params)
    pf = portfolio(bars, entries[:, None], exits[:, None], config, stop_columns(strategy, [params]))
    metrics = {
        name: float(values[0])
        for name, values in portfolio_metrics(pf, bars, config.days_per_year, config.conventions).items()
    }
    metrics["fees"] = metrics["fees_paid"]
    trades = []
    records = pf.trades.values
    reasons = exit_reasons(bars, records, strategy.stops_for(params), entries, exits, config.allow_shorts)
    for record, reason in zip(records, reasons, strict=True):
        trades.append(
            {
                "symbol": symbol,
                "direction": "long" if int(record["direction"]) == 0 else "short",
                "entry_bar": int(record["entry_idx"]),
                "entry_time": _time(bars, int(record["entry_idx"])),
                "entry_price": float(record["entry_price"]),
                "exit_bar": int(record["exit_idx"]),
                "exit_time": _time(bars, int(record["exit_idx"])),
                "exit_price": float(record["exit_price"]),
                "size": float(record["size"]),
                "pnl": float(record["pnl"]),
                "return": float(record["return"]),
                "fees": float(record["entry_fees"] + record["exit_fees"]),
                "exit_reason": reason,
            }
        )
    equity = np.asarray(pf.value())[:, 0]
    return SymbolBacktest(symbol, metrics, trades, equity, entries, exits, bars)


def summary(results: list[SymbolBacktest], config: BacktestConfig) -> dict[str, float]:
    """All symbols as one book with equal capital per symbol: returns and ratios are the mean over symbols,
    trades and fees the sum; win rate and profit factor are computed over every trade (``config.conventions``:
    open trades left out, profit factor over returns)."""
    if not results:
        return {}
    out = {name: float(np.mean([r.metrics[name] for r in results])) for name in METRICS}
    trades = [t for r in results for t in r.trades]
    if config.conventions.open_trades == "exclude":
        trades = [t for t in trades if t["exit_reason"] != OPEN_AT_END]
    by = "return" if config.conventions.profit_factor == "returns" else "pnl"
    won = sum(t[by] for t in trades if t[by] > 0)
    lost = -sum(t[by] for t in trades if t[by] < 0)
    no_loss = math.nan if by == "return" else math.inf
    out["trades"] = float(len(trades))
    out["win_rate"] = sum(t["pnl"] > 0 for t in trades) / len(trades) if trades else math.nan
    out["profit_factor"] = (won / lost if lost else no_loss) if trades else math.nan
    out["fees"] = out["fees_paid"] = float(sum(r.metrics["fees_paid"] for r in results))
    out["init_cash"] = config.init_cash * len(results)
    return out


def _fmt(value: float, pct: bool = False) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.2%}" if pct else f"{value:,.2f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A box-drawn table like freqtrade's."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "│ " + " │ ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " │"  # noqa: E731
    bar = lambda left, mid, right: left + mid.join("─" * (w + 2) for w in widths) + right  # noqa: E731
    return "\n".join([bar("┏", "┳", "┓"), line(headers), bar("┡", "╇", "┩"), *map(line, rows), bar("└", "┴", "┘")])


def text_report(strategy: Strategy, params: Mapping, results: list[SymbolBacktest], totals: dict, trades: bool) -> str:
    parts = [f"Strategy {strategy.name} with {dict(params)}"]
    rows = [
        [
            r.symbol,
            f"{r.metrics['trades']:.0f}",
            _fmt(r.metrics["total_return"], True),
            _fmt(r.metrics["win_rate"], True),
            _fmt(r.metrics["profit_factor"]),
            _fmt(r.metrics["sharpe"]),
            _fmt(r.metrics["max_drawdown"], True),
            _fmt(r.metrics["exposure"], True),
            _fmt(r.metrics["fees_paid"]),
        ]
        for r in results
    ]
    headers = ["Pair", "Trades", "Return", "Win %", "Profit factor", "Sharpe", "Max DD", "Exposure", "Fees"]
    parts += ["BACKTESTING REPORT (per symbol)", table(headers, rows)]
    reasons: dict[str, list[float]] = {}
    for r in results:
        for t in r.trades:
            reasons.setdefault(t["exit_reason"], []).append(t["return"])
    if reasons:
        reason_rows = [
            [name, str(len(v)), _fmt(float(np.mean(v)), True), str(sum(x > 0 for x in v))]
            for name, v in reasons.items()
        ]
        parts += ["EXIT REASONS", table(["Exit reason", "Trades", "Avg return", "Wins"], reason_rows)]
    summary_rows = [
        [name, _fmt(totals[name], name not in ("sharpe", "sortino", "calmar", "profit_factor", "trades", "fees"))]
        for name in (*JSON_METRICS, "cagr", "calmar", "fees")
    ]
    parts += ["SUMMARY METRICS (mean over symbols; trades and fees summed)", table(["Metric", "Value"], summary_rows)]
    if trades:
        trade_rows = [
            [
                t["symbol"],
                t["entry_time"],
                _fmt(t["entry_price"]),
                t["exit_time"],
                _fmt(t["exit_price"]),
                _fmt(t["return"], True),
                t["exit_reason"],
            ]
            for r in results
            for t in r.trades
        ]
        parts += [
            "TRADES",
            table(["Pair", "Entry", "Entry price", "Exit", "Exit price", "Return", "Exit reason"], trade_rows),
        ]
    return "\n".join(parts)


def json_ready(value):
    """NaN and inf as JSON can carry them (null, "inf")."""
    if isinstance(value, float):
        return (
            None if math.isnan(value) else ("inf" if value == math.inf else ("-inf" if value == -math.inf else value))
        )
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value

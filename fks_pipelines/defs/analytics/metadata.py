"""What the strategy_choices asset shows in the catalog: the decisions, the latest choice per symbol, and the
chained test-window equity, built from the run's stored decisions (so an incremental run shows all of them)."""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from fks_pipelines.lib.db.analytics import Signal, StrategyStateRow
from fks_pipelines.lib.quant.choice_updates import ChoiceUpdate

SHOWN = 60  # the latest decisions per symbol in the table (every one is in analytics.strategy_choices)

DECISION_COLUMNS = (
    TableColumn("symbol", "string"),
    TableColumn("decided_at", "string", description="UTC; every input of the choice is before it"),
    TableColumn("strategy", "string", description="the choice: a strategy or cash"),
    TableColumn("candidate", "string", description="the best strategy on the validation window"),
    TableColumn("validation_return", "float", description="the candidate's, after fees"),
    TableColumn("dsr", "float", description="Deflated Sharpe Ratio of the candidate's validation record"),
    TableColumn("pbo", "float", description="Probability of Backtest Overfitting of best-Sharpe selection"),
    TableColumn("test_return", "float", description="the choice on the test window (empty until it ends)"),
    TableColumn("test_buy_and_hold", "float"),
)


def number(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def png_markdown(curve: np.ndarray, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=90)
    ax.plot(curve, lw=1.2)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("decisions (test windows chained)")
    ax.set_ylabel("equity (x start)")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f"![{title}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


def choices_metadata(config: Any, update: ChoiceUpdate, rows: list[dict]) -> dict[str, Any]:
    """The asset's metadata from the run's stored decisions ``rows`` (analytics.run_choices)."""
    by_symbol: dict[str, list[dict]] = {}
    for r in rows:
        by_symbol.setdefault(r["symbol"], []).append(r)
    shown = [r for symbol_rows in by_symbol.values() for r in symbol_rows[-SHOWN:]]
    records = [
        TableRecord(
            {
                "symbol": r["symbol"],
                "decided_at": f"{r['decided_at']:%Y-%m-%d %H:%M}",
                "strategy": r["strategy"],
                "candidate": r["candidate"] or "",
                "validation_return": number(r["oos_total_return"]),
                "dsr": number(r["dsr"]),
                "pbo": number(r["pbo"]),
                "test_return": number(r["test_total_return"]),
                "test_buy_and_hold": number(r["test_buy_and_hold_return"]),
            }
        )
        for r in shown
    ]
    sharpes = [r["test_sharpe"] for r in rows if r["test_sharpe"] is not None and np.isfinite(r["test_sharpe"])]
    first = min((r["in_sample_start"] for r in rows if r["in_sample_start"]), default=None)
    metadata: dict[str, Any] = {
        "run_id": update.run_id,
        "objective": config.objective,
        "search": config.search
        if config.search == "grid"
        else f"optuna ({config.optuna_trials} trials/window, seed {config.seed})",
        "direction": "long and short" if config.allow_shorts else "long only",
        "data_range": (
            f"{first:%Y-%m-%d %H:%M} .. {update.data_end:%Y-%m-%d %H:%M} UTC" if first and update.data_end else "-"
        ),
        "windows": (
            f"in-sample {config.in_sample_days}d, validation {config.validation_days}d, test {config.every_days}d;"
            f" a decision every {config.every_days}d; cash unless DSR >= {config.min_dsr}"
        ),
        "decision_count": len(rows),
        "first_decision": f"{min(r['decided_at'] for r in rows):%Y-%m-%d %H:%M}" if rows else "-",
        "last_decision": f"{max(r['decided_at'] for r in rows):%Y-%m-%d %H:%M}" if rows else "-",
        "decided_this_run": sum(update.decided.values()),
        "tests_reported_this_run": sum(update.reported.values()),
        "cash_share": MetadataValue.float(
            float(np.mean([r["strategy"] == "cash" for r in rows])) if rows else float("nan")
        ),
        # Out-of-sample: the choices' mean Sharpe on their ended test windows (NaN while none has one).
        "test_sharpe_mean": MetadataValue.float(float(np.mean(sharpes)) if sharpes else float("nan")),
        "test_windows": sum(1 for r in rows if r["test_total_return"] is not None),
        "decisions": MetadataValue.table(records, schema=TableSchema(columns=list(DECISION_COLUMNS))),
        "chosen": MetadataValue.json(
            {s: {"strategy": rs[-1]["strategy"], "params": rs[-1]["params"]} for s, rs in by_symbol.items()}
        ),
        "lookahead_flagged": MetadataValue.json({n: [f.line() for f in found] for n, found in update.flagged.items()}),
    }
    for symbol, rs in by_symbol.items():
        last = rs[-1]
        for name in ("dsr", "pbo"):
            if last[name] is not None and np.isfinite(last[name]):
                metadata[f"{name}_{symbol}"] = MetadataValue.float(float(last[name]))
        returns = [r["test_total_return"] for r in rs if r["test_total_return"] is not None]
        if returns:
            curve = np.cumprod(np.concatenate([[1.0], 1 + np.asarray(returns, dtype=float)]))
            metadata[f"test_equity_{symbol}"] = MetadataValue.md(png_markdown(curve, f"{symbol}: test-window equity"))
    return metadata


SIGNAL_COLUMNS = (
    TableColumn("symbol", "string"),
    TableColumn("close", "float", description="the day's last hourly close"),
    TableColumn("rsi_14", "float"),
    TableColumn("macd_hist", "float"),
    TableColumn("entries", "string", description="strategies whose entry fired on the day's last bar"),
    TableColumn("exits", "string", description="strategies whose exit fired on the day's last bar"),
)


def signals_table(rows: list[Signal]) -> MetadataValue:
    """One day's signals per symbol, as a table the UI renders."""
    records = [
        TableRecord(
            {
                "symbol": r.symbol,
                "close": number(r.indicators.get("close")),
                "rsi_14": number(r.indicators.get("rsi_14")),
                "macd_hist": number(r.indicators.get("macd_hist")),
                "entries": ", ".join(k for k, v in r.strategy_signals.items() if v["entry"]) or "-",
                "exits": ", ".join(k for k, v in r.strategy_signals.items() if v["exit"]) or "-",
            }
        )
        for r in rows
    ]
    return MetadataValue.table(records, schema=TableSchema(columns=list(SIGNAL_COLUMNS)))


def signals_per_day(
    rows: list[Signal], states: list[StrategyStateRow], start: datetime, end: datetime
) -> dict[str, dict[str, Any]]:
    """Each partition's metadata (keyed by its day, every day in [start, end)): its own signals and strategy
    state."""
    out = {}
    day = start
    while day < end:
        day_rows = [r for r in rows if r.bucket == day]
        day_states = [r for r in states if r.bucket == day]
        out[f"{day:%Y-%m-%d}"] = {
            "dagster/row_count": len(day_rows),
            "strategy_state_rows": len(day_states),
            "strategy_state_in_position": sum(1 for r in day_states if r.position != "flat"),
            "signals": signals_table(day_rows),
        }
        day += timedelta(days=1)
    return out

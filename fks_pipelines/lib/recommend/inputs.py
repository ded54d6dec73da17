"""A recommendation's inputs, assembled point-in-time from the layers' stores.

Decision time for day D is the end of D (D+1 00:00 UTC, ``recommendations.decision_time``): prices are D's daily
close (marts), signals, strategy state and regimes are D's (analytics, only rows known before the decision), the
strategy choice is the latest decided before that moment (the one effective ranking,
``analytics.latest_choices``), documents are those with as_of <= it, and the account's state counts deposits and
trades up to it (portfolio). Nothing later is read. Each read goes through the store of the schema it reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta

import psycopg

from fks_pipelines.lib.db import analytics, marts
from fks_pipelines.lib.db.portfolio import account_states
from fks_pipelines.lib.db.recommendations import decision_time
from fks_pipelines.lib.recommend.schema import AccountContext, RetrievedDocument, SymbolContext

Retriever = Callable[[str, datetime], list[RetrievedDocument]]

# The indicators a decision sees (a subset of analytics.INDICATORS, in this order).
DECISION_INDICATORS = ("close", "rsi_14", "macd_hist", "bb_lower", "bb_upper", "sma_20", "sma_50", "atr_14")


def market_inputs(conn: psycopg.Connection, market: str, symbols: list[str], day: date) -> dict[str, dict]:
    """Per symbol, what is known at the end of ``day`` (symbols without a close that day are left out)."""
    at = decision_time(day)
    start = at - timedelta(days=1)
    signals = analytics.signals_by_day(conn, market, symbols, start, at, known_before=at)
    states = analytics.strategy_state_by_day(conn, market, symbols, start, at, known_before=at)
    regimes = analytics.regimes_by_day(conn, market, symbols, start, at)
    choices = analytics.latest_choices(conn, market, symbols, at)
    out: dict[str, dict] = {}
    for bar in marts.daily_bars_with_returns(conn, market, symbols, start, at):
        symbol, vol = bar["symbol"], bar["volatility_30d"]
        signal = signals.get((symbol, start))
        state = states.get((symbol, start))
        regime = regimes.get((symbol, start))
        choice = choices.get(symbol)
        out[symbol] = {
            "price": bar["close"],
            "return_1d": bar["simple_return"],
            "daily_volatility": vol / math.sqrt(365) if vol else None,
            "indicators": {k: signal[k] for k in DECISION_INDICATORS} if signal else {},
            "signals": {
                k: {"entry": v["entry"], "exit": v["exit"], "params": v["params"]}
                for k, v in signal["strategy_signals"].items()
            }
            if signal
            else {},
            "strategy": {
                "strategy": choice["strategy"],
                "params": choice["params"],
                "oos_sharpe": choice["oos_sharpe"],
                "oos_total_return": choice["oos_total_return"],
                "oos_max_drawdown": choice["oos_max_drawdown"],
                "buy_and_hold_return": choice["buy_and_hold_return"],
                "decided_at": choice["decided_at"].isoformat(),
            }
            if choice
            else None,
            "regime": regime,
            "state": {
                "strategy": state["strategy"],
                "params": state["params"],
                "position": state["position"],
                "since": state["since"].isoformat() if state["since"] else None,
                "entry_price": state["entry_price"],
                "unrealised_pnl": state["unrealised_pnl"],
                "as_of": state["as_of"].isoformat(),
            }
            if state
            else None,
        }
    return out


def contexts(
    conn: psycopg.Connection, day: date, symbols: list[str], market: str, retrieve: Retriever
) -> list[AccountContext]:
    """Each account's decision context for ``day``: its state, the market inputs and the retrieved documents,
    all as of the decision time."""
    at = decision_time(day)
    accounts = [s for s in account_states(conn, at) if s.market == market]
    if not accounts:
        return []
    inputs = market_inputs(conn, market, symbols, day)
    documents = {s: retrieve(s, at) for s in inputs}  # once per symbol, shared by every account
    out = []
    for state in accounts:
        value = {s: q * inputs[s]["price"] for s, q in state.positions.items() if s in inputs}
        equity = state.cash + sum(value.values())
        symbol_contexts = [
            SymbolContext(
                symbol=s,
                current_allocation=value.get(s, 0.0) / equity if equity > 0 else 0.0,
                documents=documents[s],
                **inputs[s],
            )
            for s in symbols
            if s in inputs
        ]
        out.append(AccountContext(state.account, state.kind, at, equity, state.cash, symbol_contexts))
    return out

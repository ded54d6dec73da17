"""Section 1 of issue 13: the strategy's position walked from its signals (point-in-time), and the rules engine
following it: non-zero targets while the strategy is long, "hold" once the account is there, "sell" on the exit,
cash when no strategy beats cash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from fks_pipelines.lib.quant.state import position_state
from fks_pipelines.lib.quant.strategies import Strategy
from fks_pipelines.lib.recommend.rules_engine import recommend_by_rules
from fks_pipelines.lib.recommend.schema import AccountContext, SymbolContext

T0 = datetime(2024, 5, 1, tzinfo=UTC)
ENTRY_AT, EXIT_AT = 3, 8


def scripted(bars, at_entry: int, at_exit: int):
    n = len(bars["close"])
    entries, exits = np.zeros(n, bool), np.zeros(n, bool)
    if at_entry < n:
        entries[at_entry] = True
    if at_exit < n:
        exits[at_exit] = True
    return entries, exits


SCRIPTED = Strategy("scripted", scripted)


def bars(n: int) -> dict:
    close = 100.0 + np.arange(n, dtype=float)
    times = np.array([np.datetime64(T0.replace(tzinfo=None) + timedelta(hours=i), "us") for i in range(n)])
    return {"open": close - 0.5, "high": close + 1, "low": close - 1, "close": close, "bucket": times}


def test_the_position_follows_entries_and_exits_and_uses_no_later_bar():
    full = bars(12)
    for t in range(12):
        seen = {k: v[: t + 1] for k, v in full.items()}
        state = position_state(seen, SCRIPTED, {"at_entry": ENTRY_AT, "at_exit": EXIT_AT})
        if ENTRY_AT <= t < EXIT_AT:
            assert state.position == "long"
            assert state.since == T0 + timedelta(hours=ENTRY_AT)
            assert state.entry_price == 100.0 + ENTRY_AT
            assert abs(state.unrealised_pnl - ((100.0 + t) / (100.0 + ENTRY_AT) - 1)) < 1e-12
        else:
            assert state.position == "flat" and state.entry_price is None
    # A perturbed future changes nothing up to now: the state at bar 5 is the same with any bars after it.
    changed = {k: v.copy() for k, v in full.items()}
    changed["close"][6:] *= 0.5
    assert position_state({k: v[:6] for k, v in changed.items()}, SCRIPTED, {"at_entry": 3, "at_exit": 8}) == (
        position_state({k: v[:6] for k, v in full.items()}, SCRIPTED, {"at_entry": 3, "at_exit": 8})
    )
    short = position_state(full, SCRIPTED, {"at_entry": 3, "at_exit": 8}, allow_shorts=True)
    assert short.position == "short" and short.entry_price == 108.0
    assert position_state(full, None, {}).position == "flat"  # cash


def context(position: str, current: float, strategy: str = "ma_cross", cash: float | None = None) -> AccountContext:
    state = {"strategy": strategy, "params": {}, "position": position, "since": "2024-05-02T00:00:00+00:00"}
    symbol = SymbolContext(
        symbol="BTCUSDT",
        price=60_000.0,
        daily_volatility=0.02,
        return_1d=0.01,
        indicators={},
        signals={},  # no entry or exit fires today: the state alone drives the target
        strategy={"strategy": strategy, "oos_sharpe": 1.0},
        regime=None,
        current_allocation=current,
        state=state,
    )
    equity = 10_000.0
    return AccountContext("acct", "personal", T0, equity, equity * (1 - current) if cash is None else cash, [symbol])


def test_a_long_strategy_gives_an_empty_account_a_buy_every_day_and_a_sell_on_its_exit():
    # Five days long with no signal on four of them: an empty account gets a non-zero "buy" each day.
    for _ in range(5):
        rec = recommend_by_rules(context("long", 0.0)).recommendations[0]
        assert rec.action == "buy" and rec.target_allocation > 0.05, rec
        assert "ma_cross is long" in rec.rationale
    target = recommend_by_rules(context("long", 0.0)).recommendations[0].target_allocation
    held = recommend_by_rules(context("long", target)).recommendations[0]
    assert held.action == "hold" and held.target_allocation == target  # an account at X% holds X%
    exit_ = recommend_by_rules(context("flat", target)).recommendations[0]
    assert exit_.action == "sell" and exit_.target_allocation == 0.0
    assert recommend_by_rules(context("flat", 0.0)).recommendations[0].action == "hold"


def test_cash_means_a_target_of_cash_and_the_rationale_says_so():
    empty = recommend_by_rules(context("flat", 0.0, strategy="cash")).recommendations[0]
    assert (empty.action, empty.target_allocation) == ("hold", 0.0)
    assert "no strategy beats cash" in empty.rationale
    held = recommend_by_rules(context("long", 0.15, strategy="cash")).recommendations[0]
    assert (held.action, held.target_allocation) == ("sell", 0.0)
    assert "no strategy beats cash" in held.rationale

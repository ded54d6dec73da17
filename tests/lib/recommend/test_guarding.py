"""The guards on a generated recommendation: a halted account's buy becomes a hold with the guard's reason in its
clamps, a prop firm's buy is capped to what its rules allow at its own stop, and acts are returned for the table."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fks_pipelines.lib.portfolio.guards import History, loss_at_stop, prop_room
from fks_pipelines.lib.portfolio.ledger import Trade
from fks_pipelines.lib.recommend.generate import generate, shadow_generation
from fks_pipelines.lib.recommend.guarding import guarding_for, history_of

from .test_strategy_state_following import T0, context


def with_guards(ctx, equity_path, trades=(), overrides=None, prop_firm=None):
    days = [(T0 - timedelta(days=len(equity_path) - 1 - i), v) for i, v in enumerate(equity_path)]
    history = history_of(days, trades, equity_path[0], T0)
    ctx.guarding = guarding_for(ctx.equity, overrides, prop_firm, history, account=ctx.account)
    return ctx


def test_a_halted_account_holds_and_says_which_guard_and_why():
    free = generate(context("long", 0.0), None).recommendations[0]
    assert free.action == "buy" and free.target_allocation > 0
    g = generate(with_guards(context("long", 0.0), [14_000, 10_100, 10_000]), None)  # -28.6%: past the 25% halt
    (rec,) = g.recommendations
    assert (rec.action, rec.target_allocation) == ("hold", 0.0)
    assert rec.clamps[-1]["to"] == 0.0 and "guard max_drawdown" in rec.clamps[-1]["rule"]
    assert [(a.guard, a.action) for a in g.guard_acts] == [("max_drawdown", "block_entry")]


def test_a_recent_stop_out_of_the_symbol_cools_it_down():
    stop = Trade("paper-2024-04-30-BTCUSDT-sl", "BTCUSDT", "sell", Decimal(1), Decimal(1), Decimal(0),
                 T0 - timedelta(hours=3))  # fmt: skip
    g = generate(with_guards(context("long", 0.0), [10_000, 10_000], [stop]), None)
    assert g.recommendations[0].action == "hold"
    assert {a.guard for a in g.guard_acts} == {"cooldown"}
    later = Trade("paper-x-BTCUSDT-sl", "BTCUSDT", "sell", Decimal(1), Decimal(1), Decimal(0), T0 + timedelta(hours=1))
    assert generate(with_guards(context("long", 0.0), [10_000, 10_000], [later]), None).guard_acts == []


def test_a_prop_firm_buy_is_capped_to_what_its_rules_allow_at_its_stop():
    rules = {"daily_loss_limit": 0.002, "max_drawdown": 0.1}
    ctx = with_guards(context("long", 0.0), [10_000, 10_000], prop_firm=rules)
    (rec,) = generate(ctx, None).recommendations
    free = generate(context("long", 0.0), None).recommendations[0]
    assert 0 < rec.target_allocation < free.target_allocation
    loss = 10_000 * loss_at_stop(rec.target_allocation, rec.entry, rec.stop_loss, fee=0.001, slippage=0.0005)
    room, rule = prop_room(ctx.guarding.rules, ctx.guarding.history, 10_000)
    assert loss <= room and rule == "prop_daily_loss" and room == 20.0
    assert "guard prop_daily_loss" in rec.clamps[-1]["rule"]


def test_the_shadow_ledger_is_not_guarded_by_the_followed_accounts_history():
    ctx = with_guards(context("long", 0.0), [14_000, 10_000])
    assert shadow_generation(ctx, 10_000.0, {}).recommendations[0].action == "buy"


def test_history_reads_nothing_at_or_after_the_decision():
    h = history_of([(T0, 1.0), (T0 + timedelta(days=1), 2.0)], [], 1.0, T0)
    assert h == History([(T0, 1.0)], [], 1.0)

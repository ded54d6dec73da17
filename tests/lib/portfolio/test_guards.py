"""Protections: each guard acts when its threshold is crossed, for the set time, and only on facts known at the
decision time; prop-firm sizing never proposes a size that breaks the rules at its own stop."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.portfolio.guards import (
    TIER_PROTECTIONS,
    Fill,
    History,
    PropFirmRules,
    Protections,
    Target,
    Verdict,
    evaluate,
    guard_targets,
    loss_at_stop,
    prop_room,
    prop_rules_from,
    protections_from,
)

D0 = datetime(2024, 1, 1, tzinfo=UTC)
OFF = Protections(None, 7, None, None, 7, 3, "symbol", None, None)


def day(n: int) -> datetime:
    return D0 + timedelta(days=n)


def curve(*values: float) -> list[tuple[datetime, float]]:
    return [(day(i), v) for i, v in enumerate(values)]


def test_a_drawdown_past_the_limit_blocks_new_entries_for_the_set_time_then_lifts():
    p = Protections(max_drawdown=0.2, max_drawdown_halt_days=5, stoploss_count=None, cooldown_days=None,
                    daily_loss_limit=None)  # fmt: skip
    values = [100, 110, 95, 87, 88, 90, 92, 93, 94, 95, 96]  # 87/110 = -20.9% on day 3
    h = History(curve(*values), [], 100)
    assert evaluate(p, None, h, day(2)).acts == []  # -13.6%: within the limit
    for n in range(3, 8):
        (act,) = evaluate(p, None, h, day(n)).acts
        assert (act.guard, act.action, act.symbol, act.until) == ("max_drawdown", "block_entry", None, day(8))
        assert "20.9%" in act.reason
    assert evaluate(p, None, h, day(8)).acts == []  # the halt is over (the drawdown is still 13.6%: not re-armed)
    buy = Target("BTCUSDT", "buy", 0.2, 0.0, 100.0, 95.0)
    guarded, acts = guard_targets([buy], evaluate(p, None, h, day(4)))
    assert (guarded[0].action, guarded[0].target) == ("hold", 0.0) and acts[0].guard == "max_drawdown"
    free, _ = guard_targets([buy], evaluate(p, None, h, day(8)))
    assert (free[0].action, free[0].target) == ("buy", 0.2)


def test_the_drawdown_cut_sells_part_of_what_is_held_on_the_day_it_triggers():
    p = Protections(0.2, 5, 0.5, None, 7, 3, "symbol", None, None)
    h = History(curve(100, 110, 87), [], 100)
    v = evaluate(p, None, h, day(2))
    assert v.cut == 0.5
    (held,), _ = guard_targets([Target("ETHUSDT", "hold", 0.3, 0.3, 100.0, 90.0)], v)
    assert (held.action, held.target) == ("sell", 0.15)
    assert evaluate(p, None, h, day(3)).cut is None  # the halt goes on, the cut does not repeat


def test_k_stop_outs_in_the_window_pause_the_symbol_and_only_it():
    p = Protections(None, 7, None, 2, 7, 3, "symbol", None, None)
    exits = [Fill("BTCUSDT", day(1), "stop_loss"), Fill("BTCUSDT", day(4), "stop_loss"),
             Fill("ETHUSDT", day(4), "stop_loss"), Fill("ETHUSDT", day(3), "take_profit")]  # fmt: skip
    h = History(curve(*[100] * 10), exits, 100)
    v = evaluate(p, None, h, day(5))
    assert [(a.guard, a.symbol, a.until) for a in v.acts] == [("stoploss_guard", "BTCUSDT", day(7))]
    targets = [Target("BTCUSDT", "buy", 0.1, 0.0, 100, 95), Target("ETHUSDT", "buy", 0.1, 0.0, 100, 95)]
    out, acts = guard_targets(targets, v)
    assert [(t.symbol, t.action, t.target) for t in out] == [("BTCUSDT", "hold", 0.0), ("ETHUSDT", "buy", 0.1)]
    assert [a.symbol for a in acts] == ["BTCUSDT"]
    assert evaluate(p, None, h, day(7)).acts == []  # the pause is over
    account_wide = evaluate(Protections(None, 7, None, 2, 7, 3, "account", None, None), None, h, day(5))
    assert [(a.symbol, a.until) for a in account_wide.acts] == [(None, day(7))]


def test_stop_outs_spread_wider_than_the_window_do_not_pause():
    p = Protections(None, 7, None, 2, 7, 3, "symbol", None, None)
    h = History(curve(*[100] * 20), [Fill("X", day(1), "stop_loss"), Fill("X", day(10), "stop_loss")], 100)
    assert evaluate(p, None, h, day(11)).acts == []


def test_cooldown_after_any_exit_and_the_daily_loss_limit():
    p = Protections(None, 7, None, None, 7, 3, "symbol", 2, 0.05)
    h = History(curve(100, 100, 94), [Fill("ETHUSDT", day(1) + timedelta(hours=5), "sell")], 100)
    acts = evaluate(p, None, h, day(2)).acts
    assert sorted(a.guard for a in acts) == ["cooldown", "daily_loss_limit"]
    assert {a.guard: a.until for a in acts}["cooldown"] == day(3) + timedelta(hours=5)
    assert [a.guard for a in evaluate(p, None, h, day(1)).acts] == []  # the exit is after day 1's decision


def test_no_guard_reads_what_happened_after_the_decision():
    """Perturbation: whatever equity and exits come after the decision time, the verdict is the same."""
    p = TIER_PROTECTIONS["micro"]
    rng = random.Random(7)
    base = [100 * (1 + 0.03 * rng.gauss(0, 1)) for _ in range(30)]
    exits = [Fill(rng.choice("AB"), day(rng.randrange(30)) + timedelta(hours=rng.randrange(24)),
                  rng.choice(["stop_loss", "sell", "take_profit"])) for _ in range(25)]  # fmt: skip
    rules = PropFirmRules(0.05, 0.1, "trailing", 0.1)
    for decision in range(1, 29):
        at = day(decision)
        one = evaluate(p, rules, History(curve(*base), exits, 100), at)
        later = curve(*base[: decision + 1], *[rng.uniform(1, 500) for _ in base[decision + 1 :]])
        noise = [Fill("A", at + timedelta(hours=h), "stop_loss") for h in range(1, 40)]
        kept = [e for e in exits if e.at < at]
        other = evaluate(p, rules, History(later, kept + noise, 100), at)
        assert one.acts == other.acts, decision


@pytest.mark.parametrize("drawdown", ["static", "trailing"])
def test_a_prop_firm_size_stopped_out_never_breaks_the_daily_loss_limit_or_the_max_drawdown(drawdown):
    rng = random.Random(11)
    fee, slip = 0.001, 0.0005
    for _ in range(300):
        initial = 10_000.0
        path = [initial * (1 + rng.uniform(-0.08, 0.12)) for _ in range(rng.randrange(1, 20))]
        rules = PropFirmRules(rng.uniform(0.01, 0.06), rng.uniform(0.04, 0.12), drawdown, None)
        h = History(curve(*path), [], initial)
        equity = path[-1]
        targets = []
        for s in ["A", "B", "C"]:
            entry = rng.uniform(10, 1000)
            current = rng.choice([0.0, rng.uniform(0, 0.3)])
            targets.append(Target(s, "buy", current + rng.uniform(0, 0.5), current, entry,
                                  entry * rng.uniform(0.5, 0.99)))  # fmt: skip
        out, acts = guard_targets(targets, Verdict(), rules=rules, history=h, equity=equity, fee=fee, slippage=slip)
        loss = equity * sum(loss_at_stop(t.target, t.entry, t.stop, fee=fee, slippage=slip) for t in out)
        held = equity * sum(loss_at_stop(t.current, t.entry, t.stop, fee=fee, slippage=slip) for t in out)
        room, _ = prop_room(rules, h, equity)
        peak = max([v for _, v in h.equity] + [initial, equity]) if drawdown == "trailing" else initial
        if equity <= (1 - rules.max_drawdown) * peak:  # the account already broke its rule: nothing is bought
            assert all(t.target <= t.current for t in out)
        elif held <= room:  # what was held already fitted: the new size keeps it within both rules
            assert loss <= rules.daily_loss_limit * initial + 1e-6
            assert equity - loss >= (1 - rules.max_drawdown) * peak - 1e-6
        else:  # nothing fits: no buy raises a position, and the account is told why
            assert all(t.target <= t.current for t in out)
            assert all(a.action == "no_size_fits" for a in acts) and acts
        assert all(t.target >= t.current for t in out)  # the rule caps buys; it never sells


def test_a_reached_profit_target_stops_new_entries():
    rules = PropFirmRules(0.05, 0.1, "static", 0.08)
    (act,) = evaluate(OFF, rules, History(curve(100, 109), [], 100), day(1)).acts
    assert act.guard == "prop_profit_target" and "9.0%" in act.reason


def test_portfolio_file_overrides_are_checked():
    p = protections_from({"max_drawdown": 0.1, "cooldown_days": 3}, "medium", where="p.yaml: account a")
    assert (p.max_drawdown, p.cooldown_days, p.stoploss_count) == (0.1, 3, TIER_PROTECTIONS["medium"].stoploss_count)
    with pytest.raises(BadInputError, match="p.yaml: account a: unknown protection"):
        protections_from({"max_dd": 0.1}, "medium", where="p.yaml: account a")
    with pytest.raises(BadInputError, match="max_drawdown must be between 0 and 1"):
        protections_from({"max_drawdown": 2}, "medium", where="x")
    with pytest.raises(BadInputError, match="needs max_drawdown"):
        prop_rules_from({"daily_loss_limit": 0.05}, where="x")
    with pytest.raises(BadInputError, match="static or trailing"):
        prop_rules_from({"daily_loss_limit": 0.05, "max_drawdown": 0.1, "drawdown": "sliding"}, where="x")


def test_the_drawdown_is_measured_from_the_lookback_peak_so_a_long_slump_does_not_halt_forever():
    p = Protections(0.2, 5, None, None, 7, 3, "symbol", None, None, max_drawdown_lookback_days=10)
    values = [100] + [75] * 40  # 25% down on day 1, then flat far below the old peak
    h = History(curve(*values), [], 100)
    assert [a.guard for a in evaluate(p, None, h, day(3)).acts] == ["max_drawdown"]
    assert evaluate(p, None, h, day(20)).acts == []  # the old peak left the window: the flat account may trade
    whole = replace(p, max_drawdown_lookback_days=3650)
    assert [a.guard for a in evaluate(whole, None, h, day(20)).acts] == ["max_drawdown"]  # re-armed each halt

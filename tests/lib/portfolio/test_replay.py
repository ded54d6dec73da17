"""The one ledger replay (lib/portfolio/replay.py): per ledger, the day's fills at the bars given, lazily, so a
caller writes each ledger's fills before the next is read."""

from __future__ import annotations

from datetime import date

from fks_pipelines.lib.portfolio.paper import Target, fill_time, paper_fills
from fks_pipelines.lib.portfolio.replay import FillBars, Ledger, LedgerFills, replay_day

DAY = date(2024, 5, 10)
OPENS = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}


def test_each_ledger_fills_as_the_paper_rules_say_and_one_without_targets_fills_nothing():
    ledgers = [
        Ledger("a", 10_000.0, {}, [Target("BTCUSDT", "buy", 0.5)]),
        Ledger("b", 1_000.0, {"ETHUSDT": 2.0}, [Target("ETHUSDT", "sell", 0.0)]),
        Ledger("c", 5_000.0, {"BTCUSDT": 0.01}),
    ]
    out = list(replay_day(DAY, ledgers, FillBars(OPENS)))
    assert [o.account for o in out] == ["a", "b", "c"]
    for ledger, filled in zip(ledgers, out, strict=True):
        expected = paper_fills(
            DAY, ledger.targets, cash=ledger.cash, positions=ledger.positions, opens=OPENS, fill_at=fill_time(DAY)
        )
        assert filled == LedgerFills(ledger.account, DAY, expected)
    assert out[0].fills[0].side == "buy" and out[1].fills[0].side == "sell"
    assert out[2].fills == []


def test_a_symbol_without_a_bar_that_day_is_not_traded():
    (filled,) = replay_day(DAY, [Ledger("a", 10_000.0, {}, [Target("SOLUSDT", "buy", 0.5)])], FillBars(OPENS))
    assert filled.fills == []


def test_the_next_ledger_is_read_only_after_the_previous_fills_are_taken():
    read: list[str] = []

    def ledgers():
        for name in ("a", "b"):
            read.append(name)
            yield Ledger(name, 10_000.0, {}, [Target("BTCUSDT", "buy", 0.1)])

    replay = replay_day(DAY, ledgers(), FillBars(OPENS))
    assert read == []
    first = next(replay)
    assert (first.account, read) == ("a", ["a"])
    assert [f.account for f in replay] == ["b"] and read == ["a", "b"]


def test_a_position_bought_at_the_open_is_stopped_out_on_the_fill_days_hourly_bars():
    from datetime import UTC, datetime, timedelta

    from fks_pipelines.lib.portfolio.stops import Bar, Levels

    t0 = datetime(2024, 5, 11, tzinfo=UTC)  # the fill day of decision day DAY
    hourly = [Bar(t0, 60_000, 60_500, 59_800, 60_100), Bar(t0 + timedelta(hours=1), 60_100, 60_200, 56_000, 57_000)]
    ledger = Ledger("a", 10_000.0, {}, [Target("BTCUSDT", "buy", 0.5)], {"BTCUSDT": Levels(57_500.0, 66_000.0)})
    (filled,) = replay_day(DAY, [ledger], FillBars(OPENS, {"BTCUSDT": hourly}))
    buy, stop = filled.fills
    assert (buy.side, stop.side, stop.quantity) == ("buy", "sell", buy.quantity)
    assert abs(float(stop.price) - 57_500.0 * (1 - 0.0005)) < 1e-6 and stop.trade_id.endswith("-sl")
    assert stop.executed_at == t0 + timedelta(hours=2) - timedelta(seconds=1)
    # Without levels, or without the day's bars, the position rides.
    assert (
        len(
            next(
                replay_day(DAY, [Ledger("a", 10_000.0, {}, ledger.targets)], FillBars(OPENS, {"BTCUSDT": hourly}))
            ).fills
        )
        == 1
    )
    assert len(next(replay_day(DAY, [ledger], FillBars(OPENS))).fills) == 1
    # A position held from before (no fill today) is watched too; an untouched one is left alone.
    held = Ledger("b", 0.0, {"ETHUSDT": 1.0}, [], {"ETHUSDT": Levels(2_900.0, 3_100.0)})
    eth = [Bar(t0, 3_000, 3_120, 2_990, 3_050)]
    (tp,) = next(replay_day(DAY, [held], FillBars(OPENS, {"ETHUSDT": eth}))).fills
    assert tp.trade_id.endswith("-tp") and abs(float(tp.price) - 3_100.0 * (1 - 0.0005)) < 1e-6
    calm = [Bar(t0, 3_000, 3_050, 2_950, 3_000)]
    assert next(replay_day(DAY, [held], FillBars(OPENS, {"ETHUSDT": calm}))).fills == []

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
        assert filled == LedgerFills(ledger.account, DAY, expected, "open")
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

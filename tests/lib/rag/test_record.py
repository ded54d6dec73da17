"""The record's documents assembled from a real database (lib/rag/record.py): which exist by a given time, and
point-in-time: later prices, trades and recommendations change nothing known by then."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fks_pipelines.lib.db.portfolio import replace_paper_fills
from fks_pipelines.lib.db.recommendations import decision_time
from fks_pipelines.lib.rag.record import build_record_documents
from tests.lib.rag.record_ledger import ACCOUNT, DAY, T0, day, fill, write_recommendation, write_record

LATER = T0 + 40 * DAY  # after everything the record holds


@pytest.fixture
def record(conn):
    write_record(conn)
    return conn


def keys(docs) -> set[str]:
    return {d.key for d in docs}


def test_every_trade_every_closed_position_and_each_recommendation_with_a_known_outcome(record):
    docs = build_record_documents(record, "spot", LATER)
    by_kind = {
        k: sorted(d.key.rsplit("/", 2)[-2] + "/" + d.key.rsplit("/", 1)[-1] for d in docs if d.kind == k)
        for k in ("trade", "position", "recommendation")
    }
    assert len(by_kind["trade"]) == 6
    assert by_kind["position"] == [
        "BTCUSDT/2024-03-04T00:00:00",
        "ETHUSDT/2024-03-12T00:00:00",
    ]  # the last BTC one is open
    # Day 25's 7-day close (day 32) is beyond the mart: not known, no document. ETH's hold of day 2 asked for no
    # trade: no document (what came of holding is a position's).
    assert by_kind["recommendation"] == [
        "BTCUSDT/2024-03-03",
        "BTCUSDT/2024-03-21",
        "ETHUSDT/2024-03-11",
        "ETHUSDT/2024-03-12",
    ]
    rec = next(d for d in docs if d.key == f"recommendation/spot/{ACCOUNT}/BTCUSDT/2024-03-03")
    assert rec.as_of == decision_time(day(2)) + 7 * DAY
    assert rec.metadata["exit"]["reason"] == "stop_loss" and "stop-loss filled at 96.90" in rec.text
    assert rec.metadata["return_7d"] == pytest.approx(1.09 / 1.02 * 1.03 - 1)  # close(day 9) / close(day 2) - 1
    eth = next(d for d in docs if d.key == f"recommendation/spot/{ACCOUNT}/ETHUSDT/2024-03-11")
    assert eth.metadata["exit"]["reason"] == "take_profit"
    assert all(d.as_of <= LATER for d in docs)
    only_eth = build_record_documents(record, "spot", LATER, symbols=["ETHUSDT"])
    assert {d.symbol for d in only_eth} == {"ETHUSDT"} and keys(only_eth) < keys(docs)
    assert build_record_documents(record, "usdm", LATER) == []


def test_a_recommendation_appears_only_once_its_seven_day_close_is_known(record):
    key = f"recommendation/spot/{ACCOUNT}/BTCUSDT/2024-03-21"
    known = decision_time(day(20)) + 7 * DAY  # day 27 closes at day 28 00:00
    assert key not in keys(build_record_documents(record, "spot", known - timedelta(seconds=1)))
    assert key in keys(build_record_documents(record, "spot", known))


def test_prices_trades_and_recommendations_after_t_change_nothing_known_by_t(record):
    t = decision_time(day(10)) + 7 * DAY  # day 10's outcome is known exactly then
    before = build_record_documents(record, "spot", t)
    later_before = {d.key: d.id for d in build_record_documents(record, "spot", LATER)}
    assert f"recommendation/spot/{ACCOUNT}/ETHUSDT/2024-03-11" in keys(before)
    assert f"recommendation/spot/{ACCOUNT}/ETHUSDT/2024-03-12" not in keys(before)  # known a day later
    assert all(d.as_of <= t for d in before)
    # After t: every close changes, the open BTC position closes, a new recommendation is made.
    record.execute("UPDATE marts.fct_ohlcv_1d SET close = close * 3 WHERE bucket + interval '1 day' > %s", (t,))
    replace_paper_fills(
        record, ACCOUNT, day(22), [fill(f"paper-{day(22)}-BTCUSDT", "BTCUSDT", "sell", "5", "130", T0 + 23 * DAY)]
    )
    write_recommendation(record, 12, "BTCUSDT", "buy", "a later call")
    after = build_record_documents(record, "spot", t)
    assert sorted(d.id for d in after) == sorted(d.id for d in before)
    # ... while a build that knows those changes sees them (the test could fail).
    later_after = {d.key: d.id for d in build_record_documents(record, "spot", LATER)}
    assert len(later_after) == len(later_before) + 3  # the sell, the closed position, day 12's recommendation
    changed = {k for k in later_before if later_after.get(k) != later_before[k]}
    assert f"recommendation/spot/{ACCOUNT}/ETHUSDT/2024-03-12" in changed  # its 7-day close was tripled

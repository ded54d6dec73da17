"""The record that feeds back (lib/recommend/feedback.py): the calibration's arithmetic, the record a decision sees
on the real server (only outcomes known at its decision time: proved by perturbing every later price and every
later decision), the rules engine acting on it only when asked, and the prompt's "last times" with their as_of."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from fks_pipelines.lib.db.portfolio import Account, import_accounts
from fks_pipelines.lib.db.recommendations import decision_time, latest_rows, store_day
from fks_pipelines.lib.recommend.explain import record_lines
from fks_pipelines.lib.recommend.feedback import HORIZON_DAYS, PRIOR_WINDOWS, Outcome, Record, records_at
from fks_pipelines.lib.recommend.prompt import build_messages
from fks_pipelines.lib.recommend.rules_engine import recommend_by_rules
from tests.lib.recommend.test_generate import context

T0 = date(2024, 3, 1)
DAYS = 40
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def test_calibration_shrinks_toward_the_hit_rate_by_independent_windows():
    record = Record("ma_cross", "up_low_vol")
    assert record.calibrated(0.7) == 0.7  # nothing known: unchanged
    for i in range(70):  # 70 overlapping 7-day outcomes: 10 independent windows, all losses
        record.add(Outcome(T0 + timedelta(days=i), "BTCUSDT", -0.01, datetime(2024, 1, 1, tzinfo=UTC)))
    assert record.windows == 70 / HORIZON_DAYS == 10
    assert record.hit_rate == 0.0 and record.mean_return == pytest.approx(-0.01)
    assert record.calibrated(0.7) == pytest.approx(PRIOR_WINDOWS * 0.7 / (PRIOR_WINDOWS + 10))
    assert [o.day for o in record.last] == [T0 + timedelta(days=i) for i in (67, 68, 69)]
    shown = record.as_prompt()
    assert shown["known_outcomes"] == 70 and shown["last_times"][0]["decision_date"] == "2024-05-09"


@dataclass
class Row:
    """One symbol's stored recommendation (the store's RecommendationRow)."""

    symbol: str
    target_allocation: float
    strategy: str | None
    regime: str | None
    action: str = "buy"
    proposed_allocation: float = 0.0
    current_allocation: float = 0.0
    entry: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    horizon_days: int = 7
    confidence: float = 0.5
    rationale: str = "test"
    evidence: list[str] = field(default_factory=list)
    clamps: list = field(default_factory=list)
    reference_price: float = 100.0


@dataclass
class Gen:
    """One account's generation (the store's GenerationRow)."""

    account: str
    recommendations: list[Row]
    generator: str = "rules"
    model: str | None = None
    messages: list[dict] = field(default_factory=list)
    raw_response: str | None = None
    llm_error: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempts: int = 0
    guard_acts: list = field(default_factory=list)
    retrieved_ids: list[str] = field(default_factory=list)


def closes(symbol: str) -> np.ndarray:
    rng = np.random.default_rng(11 if symbol == "BTCUSDT" else 12)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.03, DAYS + 10)))


@pytest.fixture
def history(conn):
    """Daily closes (the part of dbt's marts.fct_ohlcv_1d the record reads), two accounts, and every day's
    stored decisions: both symbols held by ma_cross, the regime alternating by week; an account holding nothing
    some days (a day is one decision per symbol whatever the accounts)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
    conn.execute(
        "CREATE TABLE marts.fct_ohlcv_1d (market text, symbol text, bucket timestamptz, open numeric, high numeric,"
        " low numeric, close numeric, volume numeric)"
    )
    for symbol in SYMBOLS:
        c = closes(symbol)
        conn.cursor().executemany(
            "INSERT INTO marts.fct_ohlcv_1d VALUES ('spot', %s, %s, %s, %s, %s, %s, 1)",
            [
                (symbol, datetime(2024, 3, 1, tzinfo=UTC) + timedelta(days=i), c[i], c[i], c[i], c[i])
                for i in range(DAYS)
            ],
        )
    opening = datetime(2024, 3, 1, tzinfo=UTC)
    import_accounts(
        conn,
        [Account(a, "personal", Decimal(1000), opening, mode="paper") for a in ("a", "b")],
        "spot",
    )
    for i in range(DAYS):
        day = T0 + timedelta(days=i)
        regime = "up_low_vol" if (i // 7) % 2 == 0 else "down_high_vol"
        rows = [Row(s, 0.2, "ma_cross", regime, reference_price=float(closes(s)[i])) for s in SYMBOLS]
        store_day(
            conn,
            day,
            [
                (Gen("a", rows), decision_time(day)),
                (Gen("b", [replace(r, target_allocation=0.0) for r in rows]), decision_time(day)),
            ],
        )
    conn.commit()
    return conn


def known(conn, day: date) -> dict:
    book = records_at(conn, "spot", day)
    return {
        k: (r.n, r.hits, round(r.total_return, 12), [(o.day, o.symbol) for o in r.last])
        for k, r in book.records.items()
    }


def test_an_outcome_counts_only_once_it_is_known(history):
    decided = T0 + timedelta(days=20)
    records = known(history, decided)
    # Decision day d's 7-day outcome is the close of d + 7, known at the end of d + 7: by the decision of day
    # `decided` (its end), every d <= decided - 7 counts, and none after.
    counted = sum(r[0] for r in records.values())
    assert counted == len(SYMBOLS) * (20 - HORIZON_DAYS + 1)
    assert max(day for r in records.values() for day, _ in r[3]) == decided - timedelta(days=HORIZON_DAYS)
    expected: dict = {}
    for d in range(20 - HORIZON_DAYS + 1):
        regime = "up_low_vol" if (d // 7) % 2 == 0 else "down_high_vol"
        for symbol in SYMBOLS:
            change = closes(symbol)[d + HORIZON_DAYS] / closes(symbol)[d] - 1
            n, hits, total = expected.get(regime, (0, 0, 0.0))
            expected[regime] = (n + 1, hits + (change > 0), total + change)
    assert {k[1]: (r[0], r[1]) for k, r in records.items()} == {k: v[:2] for k, v in expected.items()}
    for (_, regime), r in records.items():
        assert r[2] == pytest.approx(expected[regime][2])


def test_no_later_price_or_decision_changes_a_decisions_record(history):
    """Perturbation: every close after the decision time and every decision from the decision day on change;
    the record the decision saw does not. The same change does show in a later decision's record."""
    decided = T0 + timedelta(days=25)
    at = decision_time(decided)
    before = known(history, decided)
    later = known(history, decided + timedelta(days=10))
    history.execute("UPDATE marts.fct_ohlcv_1d SET close = close * 3 WHERE bucket >= %s", (at,))
    history.execute(
        "UPDATE recommendations.daily SET regime = 'up_low_vol', strategy = 'rsi' WHERE decision_date >= %s",
        (decided,),
    )
    assert known(history, decided) == before
    assert known(history, decided + timedelta(days=10)) != later


def test_the_rules_engine_acts_on_the_record_only_when_calibrating():
    losses = Record("ma_cross", "up_high_vol")
    for i in range(140):
        losses.add(Outcome(T0 + timedelta(days=i), "ETHUSDT", -0.02, datetime(2024, 5, 1, tzinfo=UTC)))
    shown = context()
    for s in shown.symbols:
        s.record = losses if s.symbol == "ETHUSDT" else None
    plain = recommend_by_rules(shown).recommendations[1]
    assert "record: ma_cross in regime up_high_vol: 140 known 7-day outcome(s), 0% up" in plain.rationale
    shown.calibrate = True
    acted = recommend_by_rules(shown).recommendations[1]
    assert acted.confidence < plain.confidence
    assert acted.target_allocation < plain.target_allocation  # less confidence, a smaller position
    assert f"confidence {plain.confidence:.2f} -> {acted.confidence:.2f}" in acted.rationale


def test_the_prompt_shows_the_last_times_with_their_as_of():
    record = Record("ma_cross", "up_high_vol")
    record.add(Outcome(date(2024, 4, 1), "ETHUSDT", 0.05, datetime(2024, 4, 9, tzinfo=UTC)))
    shown = context()
    shown.symbols[1].record = record
    state = json.loads(build_messages(shown)[1]["content"].split("\n", 1)[1].split("\n\nRetrieved")[0])
    eth = next(s for s in state["symbols"] if s["symbol"] == "ETHUSDT")
    assert eth["track_record"]["last_times"] == [
        {"decision_date": "2024-04-01", "symbol": "ETHUSDT", "return_7d": 0.05, "as_of": "2024-04-09T00:00:00+00:00"}
    ]
    assert next(s for s in state["symbols"] if s["symbol"] == "BTCUSDT")["track_record"] is None


def test_fks_explain_prints_each_symbols_record_as_its_decision_saw_it(history):
    decided = T0 + timedelta(days=20)
    rows = [r for r in latest_rows(history, decided) if r["account"] == "a"]
    lines = dict(record_lines(records_at(history, "spot", decided), rows))
    assert set(lines) == set(SYMBOLS)
    regime = "up_low_vol" if (20 // 7) % 2 == 0 else "down_high_vol"
    assert lines["BTCUSDT"].startswith(f"ma_cross in regime {regime}: ")
    # The latest outcome shown is one known by the decision: its day + 7 closed by then.
    known = [date.fromisoformat(part.split()[1]) for part in lines["BTCUSDT"].split("last: ")[1].split("; ")]
    assert max(known) <= decided - timedelta(days=HORIZON_DAYS)

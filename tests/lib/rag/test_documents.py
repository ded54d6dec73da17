"""Documents: content-hash ids, point-in-time as_of, the text rules, and what the builders write."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.rag.documents import (
    MAX_TEXT_CHARS,
    Document,
    descriptors,
    market_summary,
    signal_events,
    strategy_summary,
)

T = datetime(2024, 5, 2, tzinfo=UTC)


def doc(text="BTC rose", **kw) -> Document:
    return Document(
        key=kw.pop("key", "k/1"), kind=kw.pop("kind", "market_summary"), as_of=kw.pop("as_of", T), text=text, **kw
    )


def test_id_is_the_content_hash():
    assert doc().id == doc().id and len(doc().id) == 64
    assert doc().id != doc("BTC fell").id
    assert doc().id != doc(as_of=datetime(2024, 5, 3, tzinfo=UTC)).id
    assert doc(metadata={"a": 1}).id != doc(metadata={"a": 2}).id
    assert doc(metadata={"a": 1, "b": 2}).id == doc(metadata={"b": 2, "a": 1}).id  # key order is not content


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "text is empty"),
        ("  \n\t ", "text is empty"),
        ("price\x00rose", "NUL character at 5"),
        (b"caf\xe9 au lait", "not UTF-8 (byte 3"),
        ("bad \udcff surrogate", "unpaired surrogate at character 4"),
        ("x" * (MAX_TEXT_CHARS + 1), "more than the 200,000 allowed"),
        (42, "text must be a string"),
    ],
)
def test_bad_text_is_rejected_with_the_document_named(text, message):
    with pytest.raises(BadInputError, match=re.escape(message)) as caught:
        doc(text, key="market_summary/spot/BTCUSDT/2024-05-01")
    assert str(caught.value).startswith("market_summary/spot/BTCUSDT/2024-05-01: ")


def test_utf8_bytes_are_decoded_and_timezone_is_required():
    assert doc("café ₿".encode()).text == "café ₿"
    with pytest.raises(BadInputError, match="timezone-aware"):
        doc(as_of=datetime(2024, 5, 2))


def test_metadata_is_plain_json():
    d = doc(metadata={"nan": float("nan"), "when": T, "nested": [float("inf"), 1.5]})
    assert d.metadata == {"nan": None, "when": T.isoformat(), "nested": [None, 1.5]}


def day(**kw) -> dict:
    base = {
        "market": "spot",
        "symbol": "BTCUSDT",
        "bucket": datetime(2024, 5, 1, tzinfo=UTC),
        "open": 100.0,
        "high": 110.0,
        "low": 90.0,
        "close": 105.0,
        "volume": 1234.0,
        "bar_count": 1440,
        "expected_bars": 1440,
        "simple_return": 0.05,
        "volatility_7d": 0.4,
        "volatility_30d": 0.5,
    }
    return base | kw


def test_market_summary_is_known_at_the_end_of_its_day_and_names_events():
    calm = market_summary(day(), None, None)
    assert calm.as_of == datetime(2024, 5, 2, tzinfo=UTC) and calm.key == "market_summary/spot/BTCUSDT/2024-05-01"
    assert "Nothing notable" in calm.text and "+5.00%" in calm.text
    # 0.5 annualised is 2.6% a day: a 12% day is a jump (> 3 sigma); 1000 of 1440 bars is a gap.
    eventful = market_summary(
        day(simple_return=0.12, bar_count=1000),
        {"regime": "up_high_vol", "next_day_probabilities": {"up_high_vol": 0.7, "down_high_vol": 0.3}},
        {"close": 105.0, "rsi_14": 75.0, "macd_hist": 1.2, "sma_50": 100.0, "bb_upper": 104.0},
    )
    assert "a jump up of +12.00%" in eventful.text and "1,000 of 1,440 one-minute bars" in eventful.text
    assert "up high vol" in eventful.text and "up_high_vol 70%" in eventful.text
    assert "(overbought)" in eventful.text and "above the upper Bollinger band" in eventful.text
    assert len(eventful.metadata["events"]) == 2
    # A day built from native hourly bars (bar_source '1h') is complete at 24 of them.
    hourly = market_summary(day(bar_count=22, expected_bars=24), None, None)
    assert "a data gap: 22 of 24 hourly bars" in hourly.text


def test_signal_events_only_for_signals_that_fired():
    state = {
        "market": "spot",
        "symbol": "ETHUSDT",
        "bucket": datetime(2024, 5, 1, tzinfo=UTC),
        "as_of": datetime(2024, 5, 1, 23, tzinfo=UTC),
        "close": 3000.0,
        "strategy_signals": {
            "ma_cross": {"params": {"fast": 20, "slow": 50}, "entry": True, "exit": False},
            "rsi_reversion": {"params": {"window": 14}, "entry": False, "exit": False},
        },
    }
    (event,) = signal_events(state)
    assert event.key == "signal_event/spot/ETHUSDT/2024-05-01/ma_cross/entry"
    assert (
        "ENTRY" in event.text and "fast 20, slow 50" in event.text and event.as_of == datetime(2024, 5, 2, tzinfo=UTC)
    )


def test_strategy_summary_is_as_of_its_decision_and_keyed_by_it():
    end = datetime(2024, 5, 24, tzinfo=UTC)
    choice = {
        "run_id": "r1",
        "market": "spot",
        "symbol": "BTCUSDT",
        "strategy": "ma_cross",
        "params": {"fast": 10, "slow": 50},
        "objective": "sharpe",
        "oos_windows": 4,
        "oos_total_return": 0.02,
        "oos_sharpe": 1.1,
        "oos_max_drawdown": -0.05,
        "oos_trades": 7.0,
        "buy_and_hold_return": 0.05,
        "decided_at": datetime(2024, 5, 20, tzinfo=UTC),
        "in_sample_start": datetime(2024, 5, 10, tzinfo=UTC),
        "data_start": datetime(2024, 2, 24, tzinfo=UTC),
        "data_end": end,
    }
    summary = strategy_summary(choice)
    assert (
        summary.as_of == choice["decided_at"] < end
        and summary.key == "strategy_summary/spot/BTCUSDT/2024-05-20T00:00"
        and "did not beat buy and hold" in summary.text
        and "ma_cross (fast 10, slow 50)" in summary.text
        and "hourly bars 2024-05-10 to 2024-05-20" in summary.text
    )
    cash = strategy_summary(choice | {"strategy": "cash", "params": {}, "run_id": "r2"})
    assert "chose cash." in cash.text and "()" not in cash.text


@pytest.mark.parametrize(
    ("simple_return", "range_pct", "rsi", "regime", "expected"),
    [
        (-0.04, 0.05, 50.0, None, ["sharp drop"]),
        (-0.0399, 0.05, 50.0, None, []),
        (0.04, 0.06, 75.0, "up_high_vol", ["strong rally", "wide range", "RSI overbought", "high-volatility regime"]),
        (0.0099, 0.0299, 29.9, "sideways_low_vol", ["quiet day", "RSI oversold", "low-volatility regime"]),
        (-0.01, 0.02, 30.0, None, []),  # |return| 1% is not quiet; RSI 30 is not oversold
        (None, None, None, None, []),
        (float("nan"), float("inf"), float("nan"), None, []),
    ],
)
def test_descriptors_follow_the_documented_thresholds(simple_return, range_pct, rsi, regime, expected):
    assert descriptors(simple_return, range_pct, rsi, regime) == expected


def test_market_summary_says_its_descriptors_in_words_and_metadata():
    drop = market_summary(
        day(simple_return=-0.06, open=100.0, high=101.0, low=93.0),
        {"regime": "down_high_vol", "next_day_probabilities": {"down_high_vol": 1.0}},
        {"rsi_14": 22.0},
    )
    assert "In words: sharp drop, wide range, RSI oversold, high-volatility regime." in drop.text
    assert drop.metadata["descriptors"] == ["sharp drop", "wide range", "RSI oversold", "high-volatility regime"]
    plain = market_summary(day(simple_return=0.02, high=103.0, low=99.0), None, None)
    assert "In words" not in plain.text and plain.metadata["descriptors"] == []

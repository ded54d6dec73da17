"""What a decision reads, on the real server with the real embedding model: the day's own summary and signals by
key and time, the latest strategy record, the strategy state when its table exists, and analogs whose outcomes
are only those known at the decision time (proved by perturbing every price after it); the prompt carries the
day's own summary and no later outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.db.recommendations import decision_time
from fks_pipelines.lib.rag.documents import market_summary, signal_events, strategy_summary
from fks_pipelines.lib.rag.index import embed_pending
from fks_pipelines.lib.recommend.prompt import build_messages
from fks_pipelines.lib.recommend.retrieval import ANALOG_HORIZONS, retriever
from fks_pipelines.lib.recommend.schema import AccountContext, SymbolContext

T0 = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = 30
SYMBOLS = ("BTCUSDT", "ETHUSDT")
DAY = timedelta(days=1)


def closes(symbol: str) -> list[float]:
    rng = np.random.default_rng(7 if symbol == "BTCUSDT" else 8)
    return list(100 * np.exp(np.cumsum(rng.normal(0, 0.04, DAYS))))


def create_daily_mart(conn) -> None:
    """The part of dbt's marts.fct_ohlcv_1d that retrieval reads (dbt builds the real one)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
    conn.execute(
        "CREATE TABLE marts.fct_ohlcv_1d (market text, symbol text, bucket timestamptz, open numeric, high numeric,"
        " low numeric, close numeric, volume numeric)"
    )
    for symbol in SYMBOLS:
        c = closes(symbol)
        conn.cursor().executemany(
            "INSERT INTO marts.fct_ohlcv_1d VALUES ('spot', %s, %s, %s, %s, %s, %s, 1000)",
            [(symbol, T0 + i * DAY, c[i - 1] if i else c[0], c[i] * 1.02, c[i] * 0.97, c[i]) for i in range(DAYS)],
        )
    conn.commit()


def documents() -> list:
    out = []
    for symbol in SYMBOLS:
        c = closes(symbol)
        for i in range(DAYS):
            bucket = T0 + i * DAY
            day = {
                "market": "spot",
                "symbol": symbol,
                "bucket": bucket,
                "open": c[i - 1] if i else c[0],
                "high": c[i] * 1.02,
                "low": c[i] * 0.97,
                "close": c[i],
                "volume": 1000.0,
                "bar_count": 1440,
                "simple_return": c[i] / c[i - 1] - 1 if i else None,
                "volatility_7d": 0.6,
                "volatility_30d": 0.7,
            }
            out.append(market_summary(day, None, {"rsi_14": 25.0 if i % 5 == 0 else 50.0}))
            signals = {"ma_cross": {"entry": i % 4 == 0, "exit": i % 4 == 2, "params": {"fast": 5}}}
            out += signal_events(
                {
                    "market": "spot",
                    "symbol": symbol,
                    "bucket": bucket,
                    "as_of": bucket + timedelta(hours=23),
                    "close": c[i],
                    "strategy_signals": signals,
                }
            )
        for end in (10, 20):
            out.append(
                strategy_summary(
                    {
                        "run_id": f"run-{end}",
                        "market": "spot",
                        "symbol": symbol,
                        "strategy": "ma_cross",
                        "params": {"fast": 5},
                        "objective": "sharpe",
                        "oos_windows": 3,
                        "oos_total_return": 0.05,
                        "oos_sharpe": 1.1,
                        "oos_max_drawdown": -0.04,
                        "oos_trades": 6,
                        "buy_and_hold_return": 0.02,
                        "decided_at": T0 + end * DAY,
                        "data_start": T0,
                        "data_end": T0 + end * DAY,
                    }
                )
            )
    return out


@pytest.fixture
def knowledge_db(conn, embedder):
    create_daily_mart(conn)
    knowledge.replace_documents(conn, documents(), knowledge.DocumentScope())
    embed_pending(conn, embedder)
    return conn


def outcome_known_by(day: datetime, horizon_days: int) -> datetime:
    """When a day's h-day outcome exists: the close of day + h, i.e. the end of that day."""
    return day + (horizon_days + 1) * DAY


def test_the_day_s_own_facts_come_first_then_analogs_with_only_known_outcomes(knowledge_db, embedder):
    conn = knowledge_db
    day = (T0 + 24 * DAY).date()
    at = decision_time(day)
    docs = retriever(conn, lambda: embedder, analogs=5)("BTCUSDT", at)
    roles = [d.role for d in docs]
    # Today's summary first, by key and time: exactly the decision day's.
    assert docs[0].role == "today" and docs[0].kind == "market_summary" and docs[0].as_of == at
    assert f"on {day:%Y-%m-%d}" in docs[0].text
    # The day's fired signals (day 24: 24 % 4 == 0 -> an entry), and the latest strategy record known by then.
    signals = [d for d in docs if d.role == "signal"]
    assert [d.text.split(" signalled ")[1].split()[0] for d in signals] == ["ENTRY"]
    assert all(d.as_of == at for d in signals)
    strategy = [d for d in docs if d.role == "strategy"]
    assert len(strategy) == 1 and strategy[0].as_of == T0 + 20 * DAY
    # No strategy_state table on this database: no state, no error.
    assert "state" not in roles
    analogs = [d for d in docs if d.role == "analog"]
    assert len(analogs) == 5 and roles[-5:] == ["analog"] * 5
    assert all(a.as_of < docs[0].as_of for a in analogs)  # strictly before the decision day
    for a in analogs:
        analog_day = a.as_of - DAY
        for h in ANALOG_HORIZONS:
            value = a.outcomes[f"{h}d"]
            if outcome_known_by(analog_day, h) <= at:
                c = closes(a.symbol)
                i = (analog_day - T0).days
                assert value == pytest.approx(c[i + h] / c[i] - 1, rel=1e-9)
            else:
                assert value is None, (a.as_of, h)


def test_analog_outcomes_after_the_decision_time_are_never_read(knowledge_db, embedder):
    """Perturbation: every price after the decision changes; the retrieved context does not."""
    conn = knowledge_db
    at = decision_time((T0 + 12 * DAY).date())
    retrieve = retriever(conn, lambda: embedder, analogs=10)
    before = retrieve("ETHUSDT", at)
    analogs = [d for d in before if d.role == "analog"]
    # Days close to the decision have their short outcomes but not the 7-day one: the rule bites here.
    recent = [a for a in analogs if a.as_of >= at - 5 * DAY]
    assert recent, "expected analogs from the last few days before the decision"
    assert all(a.outcomes["7d"] is None for a in recent)
    assert any(a.outcomes["1d"] is not None for a in analogs)
    later = decision_time((T0 + 20 * DAY).date())
    later_before = retrieve("ETHUSDT", later)
    conn.execute("UPDATE marts.fct_ohlcv_1d SET close = close * 3 WHERE bucket >= %s", (at,))
    conn.commit()
    assert retrieve("ETHUSDT", at) == before
    # ... while a later decision, which knows those prices, does see the change (the test could fail).
    assert retrieve("ETHUSDT", later) != later_before


def test_strategy_state_is_read_only_for_closed_days(knowledge_db, embedder):
    conn = knowledge_db
    day = T0 + 24 * DAY
    last_bar = timedelta(hours=23)  # a day's state uses bars up to its last hourly bar
    conn.cursor().executemany(
        "INSERT INTO analytics.strategy_state (bucket, market, symbol, as_of, strategy, params, position, entry_price)"
        " VALUES (%s, 'spot', 'BTCUSDT', %s, 'ma_cross', '{}', %s, 101.5)",
        [(d, d + last_bar, p) for d, p in ((day - DAY, "flat"), (day, "long"), (day + DAY, "flat"))],
    )
    conn.commit()
    docs = retriever(conn, lambda: embedder, analogs=0)("BTCUSDT", decision_time(day.date()))
    state = [d for d in docs if d.role == "state"]  # day + 1's state was not known at day's decision
    assert len(state) == 1 and state[0].kind == "strategy_state"
    assert '"position": "long"' in state[0].text and state[0].as_of == day + last_bar


def context_for(docs, at) -> AccountContext:
    symbol = SymbolContext("BTCUSDT", 100.0, 0.03, 0.01, {}, {}, None, None, 0.0, docs)
    return AccountContext("acct", "personal", at, 10_000.0, 10_000.0, [symbol])


def test_the_prompt_holds_the_day_s_summary_and_no_outcome_later_than_the_decision(knowledge_db, embedder):
    conn = knowledge_db
    retrieve = retriever(conn, lambda: embedder, analogs=8)
    for offset in (8, 15, 29):
        at = decision_time((T0 + offset * DAY).date())
        docs = retrieve("BTCUSDT", at)
        prompt = build_messages(context_for(docs, at))[1]["content"]
        today = docs[0]
        assert today.role == "today" and today.as_of == at and today.text in prompt
        assert f'role="today" symbol="BTCUSDT" as_of="{at.isoformat()}"' in prompt
        # Every analog in the prompt, with what followed it only as far as it was known.
        for a in (d for d in docs if d.role == "analog"):
            assert a.text in prompt
            for h in ANALOG_HORIZONS:
                if outcome_known_by(a.as_of - DAY, h) > at:
                    assert a.outcomes[f"{h}d"] is None
        pending = any(None in a.outcomes.values() for a in docs if a.role == "analog")
        assert ("not yet known" in prompt) == pending
    # Perturbing every price after the last decision above leaves its prompt unchanged.
    at = decision_time((T0 + 15 * DAY).date())
    first = build_messages(context_for(retrieve("BTCUSDT", at), at))
    conn.execute("UPDATE marts.fct_ohlcv_1d SET close = close / 2 WHERE bucket >= %s", (at,))
    conn.commit()
    assert build_messages(context_for(retrieve("BTCUSDT", at), at)) == first

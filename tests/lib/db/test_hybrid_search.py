"""knowledge.hybrid_search on the real server with the real embedding model: the words a question uses find the
days the descriptors name, fused with vector similarity by reciprocal rank; the filters and the point-in-time
rule hold; analysts can call it (text only, no embedding model in SQL); `fks search --json` prints its hits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from fks_pipelines.cli import main
from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.db.roles import ANALYST, enable_analyst_login, url_for_role
from fks_pipelines.lib.rag.documents import market_summary
from fks_pipelines.lib.rag.index import embed_pending

T0 = datetime(2024, 5, 1, tzinfo=UTC)
# (return, range on the open) per day: days 3, 9 and 14 are sharp drops, 5 and 11 strong rallies, the rest mild.
MOVES = {3: -0.07, 9: -0.05, 14: -0.045, 5: 0.06, 11: 0.05}


def summaries(symbol: str) -> list:
    out = []
    for i in range(20):
        r = MOVES.get(i, 0.004 * ((i % 3) - 1))
        open_ = 100.0
        close = open_ * (1 + r)
        wide = abs(r) > 0.03
        day = {
            "market": "spot",
            "symbol": symbol,
            "bucket": T0 + timedelta(days=i),
            "open": open_,
            "high": max(open_, close) * (1.01 if wide else 1.004),
            "low": min(open_, close) * (0.99 if wide else 0.996),
            "close": close,
            "volume": 1000.0 + i,
            "bar_count": 1440,
            "simple_return": r,
            "volatility_7d": 0.5,
            "volatility_30d": 0.5,
        }
        out.append(market_summary(day, None, {"rsi_14": 50.0 + i}))
    return out


@pytest.fixture
def indexed(conn, embedder):
    knowledge.replace_documents(conn, summaries("BTCUSDT") + summaries("ETHUSDT"), knowledge.DocumentScope())
    embed_pending(conn, embedder)
    return conn


def day_of(hit) -> int:
    return (hit.as_of - T0).days - 1


def test_words_find_the_days_the_numbers_describe(indexed, embedder):
    question = "a sharp drop in price"
    at = T0 + timedelta(days=30)
    hits = knowledge.hybrid_search(
        indexed, question, embedder.encode([question])[0], 6, as_of=at, symbols=["BTCUSDT", "ETHUSDT"]
    )
    assert sorted((h.symbol, day_of(h)) for h in hits) == sorted(
        (s, d) for s in ("BTCUSDT", "ETHUSDT") for d in (3, 9, 14)
    )
    assert all(h.text_rank is not None and h.vector_rank is not None for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # The scores are the reciprocal-rank fusion of the two rankings.
    assert all(h.score == pytest.approx(1 / (60 + h.text_rank) + 1 / (60 + h.vector_rank)) for h in hits)
    rallies = knowledge.hybrid_search(indexed, "strong rally", None, 10, as_of=at, symbols=["ETHUSDT"])
    assert sorted(day_of(h) for h in rallies) == [5, 11] and all(h.vector_rank is None for h in rallies)


def test_filters_and_point_in_time(indexed, embedder):
    question = "sharp drop"
    vector = embedder.encode([question])[0]
    # Known by the end of day 10: drops of days 3 and 9 only; and nothing about another symbol.
    hits = knowledge.hybrid_search(indexed, question, vector, 10, as_of=T0 + timedelta(days=11), symbols=["ETHUSDT"])
    assert hits and all(h.symbol == "ETHUSDT" and h.as_of <= T0 + timedelta(days=11) for h in hits)
    assert sorted(day_of(h) for h in hits[:2]) == [3, 9]
    assert knowledge.hybrid_search(indexed, question, vector, 5, as_of=T0, kinds=["market_summary"]) == []
    assert (
        knowledge.hybrid_search(indexed, question, vector, 5, as_of=T0 + timedelta(days=30), kinds=["signal_event"])
        == []
    )


def test_analysts_call_it_in_sql_text_only(indexed, db_url):
    enable_analyst_login(indexed, "analyst-pw")
    with connect(url_for_role(db_url, ANALYST, "analyst-pw")) as analyst:
        rows = analyst.execute(
            "SELECT symbol, document_as_of, vector_rank FROM knowledge.hybrid_search('days with a strong rally',"
            " k => 3, as_of => %s, symbols => ARRAY['BTCUSDT'])",
            (T0 + timedelta(days=30),),
        ).fetchall()
    assert [(r[0], (r[1] - T0).days - 1, r[2]) for r in rows[:2]] in (
        [("BTCUSDT", 11, None), ("BTCUSDT", 5, None)],
        [("BTCUSDT", 5, None), ("BTCUSDT", 11, None)],
    )
    with pytest.raises(Exception, match="needs a question"):
        indexed.execute("SELECT * FROM knowledge.hybrid_search('the of a', NULL)").fetchall()
    indexed.rollback()


def test_fks_search_json_prints_one_object_per_hit(indexed, db_url):
    result = CliRunner().invoke(
        main,
        ["search", "a sharp drop", "-k", "3", "--symbols", "BTCUSDT", "--as-of", "2024-06-01", "--json"],
        env={"FKS_DATABASE_URL": db_url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines()]
    assert len(hits) == 3
    assert all(set(h) == {"key", "kind", "symbol", "as_of", "score", "text"} for h in hits)
    assert {h["key"].rsplit("/", 1)[1] for h in hits} == {"2024-05-04", "2024-05-10", "2024-05-15"}
    assert all(h["symbol"] == "BTCUSDT" and "sharp drop" in h["text"] for h in hits)
    empty = CliRunner().invoke(main, ["search", "  "], env={"FKS_DATABASE_URL": db_url})
    assert empty.exit_code == 2 and "empty" in empty.output

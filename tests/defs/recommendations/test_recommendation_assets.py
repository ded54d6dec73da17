"""The recommendation group through Dagster on the main job's database: an account, an LLM on 127.0.0.1
(valid, then failing), point-in-time inputs, the audit trail, the track record, the profit split, Discord."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import psycopg
import pytest
from dagster import materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.defs.portfolio.assets import profit_splits
from fks_pipelines.defs.recommendations.assets import daily_recommendations, track_record
from fks_pipelines.defs.recommendations.resources import LLMResource, RecommenderResource
from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, NotifierResource, PostgresResource
from fks_pipelines.lib.db.knowledge import ensure_chunk_table, write_chunks
from fks_pipelines.lib.db.portfolio import import_accounts
from fks_pipelines.lib.portfolio.ledger import Account, Trade
from fks_pipelines.lib.rag.documents import Document
from tests.defs.conftest import SYMBOLS
from tests.support import Reply, ScriptedServer, form_parts

ACCOUNT = "test-acct"


def llm_answer(account: str) -> dict:
    recs = [
        {
            "symbol": s,
            "action": "buy",
            "target_allocation": 0.9,
            "entry": None,
            "stop_loss": None,
            "take_profit": None,
            "horizon_days": 3,
            "confidence": 0.6,
            "rationale": f"{s} looks strong",
            "evidence": [],
        }
        for s in SYMBOLS
    ]
    return {"account": account, "recommendations": recs}


def openai_server(entry: str | None = None) -> ScriptedServer:
    """Answers every account it is asked about (the account's name is in the prompt's JSON), with ``entry``
    written as is into the answer's text when given (e.g. Infinity)."""

    def reply(request) -> Reply:
        prompt = request.json()["messages"][1]["content"]
        account = json.loads(prompt.split("(JSON):\n", 1)[1].split("\n\n", 1)[0])["account"]
        content = json.dumps(llm_answer(account))
        content = content.replace('"entry": null', f'"entry": {entry}') if entry else content
        body = {"choices": [{"message": {"content": content}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
        return Reply(200, json.dumps(body).encode())

    return ScriptedServer(reply)


@pytest.fixture(scope="module")
def account_db(pipeline, embedder):
    url, _ = pipeline
    with psycopg.connect(url, autocommit=True) as conn:
        from decimal import Decimal

        trade = Trade(
            "t1",
            "BTCUSDT",
            "buy",
            Decimal("0.01"),
            Decimal("60000"),
            Decimal("0.6"),
            datetime(2024, 5, 5, tzinfo=UTC),
        )
        import_accounts(
            conn,
            [
                Account(ACCOUNT, "personal", Decimal("10000"), datetime(2024, 3, 1, tzinfo=UTC), [trade]),
                Account("test-longterm", "long_term", Decimal("5000"), datetime(2024, 3, 1, tzinfo=UTC)),
            ],
            "spot",
        )
        # A document from the future, worded to be retrieved for BTCUSDT: it must never reach an earlier prompt.
        leak = Document(
            key="test/leak",
            kind="market_summary",
            as_of=datetime(2024, 5, 15, tzinfo=UTC),
            text="FUTURE-LEAK: BTCUSDT latest market summary, strategy signals and walk-forward results.",
            symbol="BTCUSDT",
            market="spot",
        )
        conn.execute(
            "INSERT INTO knowledge.documents (id, key, kind, market, symbol, as_of, text)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (leak.id, leak.key, leak.kind, leak.market, leak.symbol, leak.as_of, leak.text),
        )
        ensure_chunk_table(conn, embedder.dimension)
        write_chunks(
            conn,
            [
                (
                    leak.id,
                    0,
                    leak.kind,
                    leak.symbol,
                    leak.as_of,
                    0,
                    len(leak.text),
                    leak.text,
                    embedder.model,
                    embedder.version,
                    embedder.encode([leak.text])[0],
                )
            ],
            [leak.id],
        )
    return url


def run(
    url: str,
    start: str,
    end: str,
    llm: LLMResource,
    notifier: NotifierResource | None = None,
    raise_on_error: bool = True,
):
    resources = {
        "database": PostgresResource(url=url),
        "market_data": MarketDataResource(symbols=SYMBOLS),
        "embedding_model": EmbeddingModelResource(device="cpu"),
        "llm": llm,
        "recommender": RecommenderResource(),
        "notifier": notifier or NotifierResource(),
    }
    return materialize(
        [daily_recommendations, track_record, profit_splits],
        resources=resources,
        raise_on_error=raise_on_error,
        tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
    )


def test_llm_recommendations_are_sized_audited_and_posted(account_db):
    hook = ScriptedServer(lambda request: Reply(204))
    with openai_server() as server, hook:
        result = run(
            account_db,
            "2024-05-10",
            "2024-05-20",
            LLMResource(base_url=server.url + "/v1", model="test-model"),
            NotifierResource(discord_webhook_url=hook.url + "/webhook"),
        )
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    # The post carries the day's message and each account's pictures (Discord's multipart files).
    parts = form_parts(hook.requests[0])
    assert (
        len(hook.requests) == 1
        and "fks daily recommendation — 2024-05-20" in json.loads(parts["payload_json"][2])["content"]
    )
    pictures = [p for name, p in parts.items() if name.startswith("files[")]
    assert pictures and all(t == "image/png" and b[:8] == b"\x89PNG\r\n\x1a\n" for _, t, b in pictures)
    names = [name for name, _, _ in pictures]
    assert all(name.endswith(".png") for name in names) and any(name.endswith("-account.png") for name in names)
    with psycopg.connect(account_db) as conn:
        rows = conn.execute(
            "SELECT decision_date, symbol, generator, proposed_allocation, target_allocation, clamps"
            " FROM recommendations.daily WHERE account = %s ORDER BY decision_date, symbol",
            (ACCOUNT,),
        ).fetchall()
        audit = conn.execute(
            "SELECT model, prompt, prompt_tokens, latency_ms, attempts FROM recommendations.generations"
            " WHERE account = %s AND decision_date = '2024-05-12'",
            (ACCOUNT,),
        ).fetchone()
        conn.execute("SET ROLE analyst")
        assert conn.execute("SELECT count(*) FROM recommendations.daily").fetchone()[0] >= len(rows)
    assert len(rows) == 11 * len(SYMBOLS) and {r[2] for r in rows} == {"llm"}
    # The catalog: each daily partition describes its day (a typed table of every recommendation), the run's
    # totals say run_*, and every table asset names its table, columns and rows; numbers the Plots tab charts.
    with psycopg.connect(account_db) as conn:
        per_day = dict(
            conn.execute("SELECT decision_date::text, count(*) FROM recommendations.daily GROUP BY 1").fetchall()
        )
        splits = conn.execute("SELECT count(*) FROM portfolio.profit_splits").fetchone()[0]
    daily = {m.partition: m.metadata for m in result.asset_materializations_for_node("recommendations__daily")}
    assert sorted(daily) == [f"2024-05-{d}" for d in range(10, 21)]
    for day, meta in daily.items():
        records = meta["recommendations"].value.records
        assert meta["dagster/row_count"].value == per_day[day] == len(records)
        assert {r.data["account"] for r in records if r.data["symbol"] in SYMBOLS} >= {ACCOUNT}
        assert all(isinstance(r.data["target_allocation"], float) and r.data["generator"] == "llm" for r in records)
        assert meta["run_days"].value == 11 and meta["dagster/table_name"].value == "recommendations.daily"
    (record,) = [m.metadata for m in result.asset_materializations_for_node("recommendations__track_record")]
    scored_table = record["by_account_and_generator"].value
    assert {c.name: c.type for c in scored_table.schema.columns}["hit_rate_1d"] == "float"
    assert isinstance(record[f"hit_rate_1d_{ACCOUNT}_llm"].value, float)
    assert record["dagster/row_count"].value == sum(r.data["scored"] for r in scored_table.records)
    (profit,) = [m.metadata for m in result.asset_materializations_for_node("portfolio__profit_splits")]
    assert profit["dagster/table_name"].value == "portfolio.profit_splits"
    assert profit["dagster/row_count"].value == splits == len(profit["transfers"].value.records)
    assert {c.name for c in profit["dagster/column_schema"].schema.columns} >= {"account", "transfer"}

    assert all(r[3] == 0.9 and r[4] <= 0.20 and r[5] for r in rows)  # the model's 90% never survives sizing
    model, prompt, tokens, latency, attempts = audit
    assert model == "test-model" and tokens == 10 and latency > 0 and attempts == 1
    text = json.dumps(prompt)
    assert "2024-05-13T00:00:00+00:00" in text and "FUTURE-LEAK" not in text  # no document from after the decision


def test_prices_after_the_decision_never_reach_the_prompt(account_db):
    with psycopg.connect(account_db) as conn:
        closes = dict(
            conn.execute(
                "SELECT bucket::date, close::float8 FROM marts.fct_ohlcv_1d WHERE symbol = 'BTCUSDT'"
            ).fetchall()
        )
        (prompt,) = conn.execute(
            "SELECT prompt FROM recommendations.generations WHERE account = %s AND decision_date = '2024-05-12'",
            (ACCOUNT,),
        ).fetchone()
    state = json.loads(
        prompt[1]["content"].split("Account and market state (JSON):\n", 1)[1].split("\n\nRetrieved documents", 1)[0]
    )
    btc = next(s for s in state["symbols"] if s["symbol"] == "BTCUSDT")
    assert btc["close"] == closes[date(2024, 5, 12)]
    later = [closes[d] for d in closes if d > date(2024, 5, 12)]
    assert all(str(c) not in prompt[1]["content"] for c in later)
    assert btc["current_allocation"] > 0  # the 0.01 BTC bought on 2024-05-05 is in the account's state


def test_a_failing_llm_falls_back_to_rules_and_the_check_warns(account_db):
    broken = ScriptedServer(lambda request: Reply(500, b"overloaded"))
    hook = ScriptedServer(lambda request: Reply(500, b"discord down"))
    with broken, hook:
        result = run(
            account_db,
            "2024-05-21",
            "2024-05-21",
            LLMResource(base_url=broken.url + "/v1", model="m", retries=1),
            NotifierResource(discord_webhook_url=hook.url),
        )
    assert result.success  # neither a failing model nor a failing webhook fails the recommendation
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity.value == "WARN"
    (event,) = result.asset_materializations_for_node("recommendations__daily")
    assert event.metadata["llm_failures"].value == 2  # two accounts
    with psycopg.connect(account_db) as conn:
        generator, error = conn.execute(
            "SELECT generator, llm_error FROM recommendations.generations"
            " WHERE account = %s AND decision_date = '2024-05-21'",
            (ACCOUNT,),
        ).fetchone()
    assert generator == "rules" and "HTTP 500" in error


def test_track_record_and_profit_split(account_db):
    with psycopg.connect(account_db) as conn:
        closes = dict(
            conn.execute(
                "SELECT bucket::date, close::float8 FROM marts.fct_ohlcv_1d WHERE symbol = 'ETHUSDT'"
            ).fetchall()
        )
        r1, r7, hit, action = conn.execute(
            "SELECT return_1d, return_7d, hit_1d, action FROM recommendations.track_record"
            " WHERE account = %s AND symbol = 'ETHUSDT' AND decision_date = '2024-05-12'",
            (ACCOUNT,),
        ).fetchone()
        last = conn.execute(
            "SELECT return_1d, return_7d FROM recommendations.track_record WHERE account = %s"
            " AND decision_date = '2024-05-20' AND symbol = 'ETHUSDT'",
            (ACCOUNT,),
        ).fetchone()
        split = conn.execute(
            "SELECT month, to_account, profit, transfer FROM portfolio.profit_splits WHERE account = %s", (ACCOUNT,)
        ).fetchone()
    assert r1 == pytest.approx(closes[date(2024, 5, 13)] / closes[date(2024, 5, 12)] - 1)
    assert r7 == pytest.approx(closes[date(2024, 5, 19)] / closes[date(2024, 5, 12)] - 1)
    assert hit == ((action == "buy") == (r1 > 0)) or action == "hold"
    assert last[0] is not None and last[1] is None  # 7 days after 2024-05-20 is not in the data yet
    assert (
        split[0] == date(2024, 4, 1)
        and split[1] == "test-longterm"
        and split[2] == pytest.approx(0.0)
        and split[3] == 0.0
    )


def test_an_infinity_in_the_answer_is_repaired_or_replaced_and_the_day_is_written(account_db):
    with openai_server(entry="Infinity") as server:
        result = run(account_db, "2024-05-22", "2024-05-22", LLMResource(base_url=server.url + "/v1", model="m"))
    assert result.success and len(server.requests) == 4  # two accounts, one repair attempt each
    with psycopg.connect(account_db) as conn:
        generations = conn.execute(
            "SELECT account, generator, attempts, llm_error FROM recommendations.generations"
            " WHERE decision_date = '2024-05-22' ORDER BY account"
        ).fetchall()
        rows = conn.execute("SELECT count(*) FROM recommendations.daily WHERE decision_date = '2024-05-22'").fetchone()[
            0
        ]
    assert [(a, g, n) for a, g, n, _ in generations] == [(ACCOUNT, "rules", 2), ("test-longterm", "rules", 2)]
    assert all("Infinity is not a JSON number" in e for *_, e in generations) and rows == 2 * len(SYMBOLS)


def test_a_day_is_written_for_every_account_or_for_none(account_db):
    with openai_server() as server:
        assert run(account_db, "2024-05-23", "2024-05-23", LLMResource(base_url=server.url + "/v1", model="m")).success
    fail_second = (
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;"
        " CREATE TRIGGER refuse_longterm BEFORE INSERT ON recommendations.generations FOR EACH ROW"
        " WHEN (NEW.account = 'test-longterm') EXECUTE FUNCTION public.refuse()"
    )
    with psycopg.connect(account_db, autocommit=True) as conn:
        conn.execute(fail_second)
        try:  # the first account's write succeeds, the second's fails: the day must stay as it was
            result = run(account_db, "2024-05-23", "2024-05-23", LLMResource(), raise_on_error=False)
        finally:
            conn.execute("DROP TRIGGER refuse_longterm ON recommendations.generations; DROP FUNCTION public.refuse()")
        day = conn.execute(
            "SELECT account, generator FROM recommendations.generations"
            " WHERE decision_date = '2024-05-23' ORDER BY account"
        ).fetchall()
        rows = conn.execute(
            "SELECT DISTINCT generator FROM recommendations.daily WHERE decision_date = '2024-05-23'"
        ).fetchall()
    assert not result.success
    assert day == [(ACCOUNT, "llm"), ("test-longterm", "llm")] and rows == [("llm",)]


def test_the_llm_timeout_and_attempts_come_from_the_environment():
    import os
    import subprocess
    import sys

    from fks_pipelines.lib.errors import BadInputError
    from fks_pipelines.settings import Settings

    env = dict(os.environ, FKS_LLM_BASE_URL="http://127.0.0.1:9/v1", FKS_LLM_TIMEOUT="7.5", FKS_LLM_MAX_ATTEMPTS="4")
    code = (
        "from fks_pipelines.definitions import resources; c = resources['llm'].client(); print(c.timeout_s, c.retries)"
    )
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert shown.stdout.split() == ["7.5", "3"], shown.stderr  # 4 attempts: the first and 3 retries
    assert (Settings.from_env({}).llm_timeout_s, Settings.from_env({}).llm_max_attempts) == (60.0, 3)
    for name, value in [
        ("FKS_LLM_TIMEOUT", "soon"),
        ("FKS_LLM_TIMEOUT", "inf"),
        ("FKS_LLM_TIMEOUT", "0"),
        ("FKS_LLM_MAX_ATTEMPTS", "0"),
        ("FKS_LLM_MAX_ATTEMPTS", "2.5"),
        ("FKS_LLM_MAX_ATTEMPTS", "1000"),
    ]:
        with pytest.raises(BadInputError, match=f"^environment: {name}='{value}' is not valid: "):
            Settings.from_env({name: value})

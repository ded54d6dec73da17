"""Paper accounts and the evaluation (issue 13, sections 3, 4 and 6) through Dagster on a small hand-made market:
two symbols, 16 days of daily bars, and a strategy state that is long for a few days on each. The fills happen at
the next open with fees and slippage; perturbing the prices after day D changes no ledger row up to D; the
evaluation's baselines equal the same baselines computed here independently; an answering LLM gives LLM rows, and
the rules engine's shadow rows and ledger beside them (equal to a replay here, point-in-time)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from dagster import materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.defs.recommendations.assets import daily_recommendations, evaluation
from fks_pipelines.defs.recommendations.resources import LLMResource, RecommenderResource
from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, NotifierResource, PostgresResource
from fks_pipelines.lib.db import analytics
from fks_pipelines.lib.db.portfolio import import_accounts
from fks_pipelines.lib.portfolio.ledger import Account
from fks_pipelines.lib.portfolio.paper import FEE, SLIPPAGE
from tests.lib.quant.real_hourly import MART_DDL
from tests.support import Reply, ScriptedServer

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FIRST = date(2024, 5, 1)
DAYS = [FIRST + timedelta(days=i) for i in range(16)]  # bars for 16 days; decisions on the first 14
LAST_DECISION = DAYS[13]
LONG = {"BTCUSDT": range(2, 7), "ETHUSDT": range(4, 11)}  # day indices at whose close the strategy is long
ACCOUNT = "paper-acct"


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def prices(perturb_after: date | None = None) -> dict[str, dict[date, tuple[float, float]]]:
    """(open, close) per symbol and day: a deterministic zig-zag; after ``perturb_after`` every price is changed."""
    out: dict[str, dict[date, tuple[float, float]]] = {}
    for s, base in (("BTCUSDT", 60_000.0), ("ETHUSDT", 3_000.0)):
        out[s] = {}
        close = base
        for i, day in enumerate(DAYS):
            open_ = close * (1 + 0.004 * ((i % 3) - 1))
            close = open_ * (1 + 0.02 * math.sin(i + len(s)))
            if perturb_after and day > perturb_after:
                open_, close = open_ * 1.37, close * 0.61
            out[s][day] = (open_, close)
    return out


def build_market(url: str, market_prices: dict) -> None:
    """The marts the recommendation reads, as dbt would have built them, and the strategy state."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MART_DDL)  # the marts dbt builds, as tables
        for s, by_day in market_prices.items():
            previous = None
            for day, (o, c) in by_day.items():
                conn.execute(
                    "INSERT INTO marts.fct_ohlcv_1d VALUES ('spot', %s, %s, %s, %s, %s, %s, 1, 24)",
                    (s, midnight(day), o, max(o, c), min(o, c), c),
                )
                r = None if previous is None else c / previous - 1
                conn.execute(
                    "INSERT INTO marts.fct_returns VALUES ('spot', %s, %s, %s, NULL, 0.4, 0.4)", (s, midnight(day), r)
                )
                previous = c
        states = []
        for s in SYMBOLS:
            for i, day in enumerate(DAYS):
                long = i in LONG[s]
                close = market_prices[s][day][1]
                entry_day = DAYS[LONG[s].start]
                states.append(
                    analytics.StrategyStateRow(
                        midnight(day),
                        s,
                        midnight(day) + timedelta(hours=23),
                        "ma_cross",
                        {"fast": 5, "slow": 20},
                        None,
                        "long" if long else "flat",
                        midnight(entry_day) if long else None,
                        market_prices[s][entry_day][1] if long else None,
                        close / market_prices[s][entry_day][1] - 1 if long else None,
                    )
                )
        analytics.replace_strategy_state(
            conn, "spot", SYMBOLS, midnight(DAYS[0]), midnight(DAYS[-1]) + timedelta(1), states
        )
        # One regime all along, with no lean either way (the rules engine's confidence is its Sharpe term alone).
        analytics.replace_regimes(
            conn,
            "spot",
            [analytics.RegimeDay(s, midnight(d), "calm", {"calm": 1.0}) for s in SYMBOLS for d in DAYS],
            [],
        )
        import_accounts(
            conn,
            [Account(ACCOUNT, "personal", Decimal(10_000), datetime(2024, 4, 1, tzinfo=UTC), [], mode="paper")],
            "spot",
        )


def run(url: str, llm: LLMResource | None = None, feedback: bool = False):
    resources = {
        "database": PostgresResource(url=url),
        "market_data": MarketDataResource(symbols=SYMBOLS),
        "embedding_model": EmbeddingModelResource(device="cpu"),  # no chunks: never loaded
        "llm": llm or LLMResource(),
        "recommender": RecommenderResource(feedback=feedback),
        "notifier": NotifierResource(),
    }
    return materialize(
        [daily_recommendations, evaluation],
        resources=resources,
        tags={ASSET_PARTITION_RANGE_START_TAG: str(FIRST), ASSET_PARTITION_RANGE_END_TAG: str(LAST_DECISION)},
    )


def ledger(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT trade_id, symbol, side, quantity, price, fee, executed_at FROM portfolio.trades"
            " WHERE account = %s ORDER BY executed_at, trade_id",
            (ACCOUNT,),
        ).fetchall()


@pytest.fixture(scope="module")
def paper_run(databases):
    url = databases.create()
    market = prices()
    build_market(url, market)
    assert run(url).success
    yield url, market
    databases.drop(url)


def test_the_paper_account_fills_at_the_next_open_with_fees_and_follows_the_state(paper_run):
    url, market = paper_run
    trades = ledger(url)
    assert trades, "the strategy is long on several days: the paper account must trade"
    with psycopg.connect(url) as conn:
        recs = {
            (d, s): (a, t, c)
            for d, s, a, t, c in conn.execute(
                "SELECT decision_date, symbol, action, target_allocation, current_allocation FROM recommendations.daily"
                " WHERE account = %s",
                (ACCOUNT,),
            ).fetchall()
        }
    for trade_id, symbol, side, quantity, price, fee, executed_at in trades:
        decided = date.fromisoformat(trade_id.removeprefix("paper-")[:10])
        assert executed_at == midnight(decided + timedelta(days=1)) + timedelta(seconds=1)
        next_open = market[symbol][decided + timedelta(days=1)][0]
        slip = 1 + SLIPPAGE if side == "buy" else 1 - SLIPPAGE
        assert abs(float(price) - next_open * slip) < 1e-6
        assert abs(float(fee) - float(quantity) * float(price) * FEE) < 1e-6
        assert recs[(decided, symbol)][0] == side  # the fill follows that day's recommendation
    for s, long_days in LONG.items():
        for i in long_days:
            action, target, current = recs[(DAYS[i], s)]
            assert target > 0, (s, DAYS[i], action)  # a non-zero target every day the strategy is long
        first = DAYS[long_days.start]
        assert recs[(first, s)][0] == "buy"
        # The fill reached the next day's state: the account holds it, so the recommendation holds.
        action, target, current = recs[(first + timedelta(days=1), s)]
        assert current > 0 and action == "hold"
        assert recs[(DAYS[long_days.stop], s)][0] == "sell"  # the exit


def decisions(url: str) -> dict[tuple[date, str], tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT decision_date, symbol, strategy, regime, confidence, rationale FROM recommendations.daily"
            " WHERE account = %s",
            (ACCOUNT,),
        ).fetchall()
    return {(d, s): rest for d, s, *rest in rows}


def test_the_feedback_acts_only_on_outcomes_known_by_each_decision(paper_run, databases):
    """The same days with the feedback on: each decision stores what it followed; until the first 7-day outcome of
    a decision to hold exists (BTC held from day 2: its outcome exists at the end of day 9), every confidence is
    the one without feedback; from then on the held decisions' confidence is calibrated, and says so."""
    url, market = paper_run
    off = decisions(url)
    other = databases.create()
    try:
        build_market(other, market)
        assert run(other, feedback=True).success
        on = decisions(other)
    finally:
        databases.drop(other)
    assert {(v[0], v[1]) for v in on.values()} == {("ma_cross", "calm")}
    known_from = DAYS[LONG["BTCUSDT"].start] + timedelta(days=7)
    for key, (*_, confidence, rationale) in on.items():
        assert "record: ma_cross in regime calm" in rationale, key
        if key[0] < known_from:
            assert "no known outcome yet" in rationale and confidence == off[key][2], key
    held_later = [k for k in on if k[0] >= known_from and k[1] == "ETHUSDT" and DAYS.index(k[0]) in LONG["ETHUSDT"]]
    assert held_later, "ETH is held after BTC's first outcome is known"
    for key in held_later:
        assert on[key][2] != off[key][2] and " -> " in on[key][3], (key, on[key], off[key])


def test_perturbing_prices_after_day_d_changes_no_ledger_row_up_to_d(paper_run, databases):
    url, _ = paper_run
    cut = DAYS[7]
    other = databases.create()
    try:
        build_market(other, prices(perturb_after=cut))
        assert run(other).success
        up_to = midnight(cut + timedelta(days=1))
        before = [t for t in ledger(url) if t[-1] <= up_to]
        after = [t for t in ledger(other) if t[-1] <= up_to]
        assert before and before == after
        assert ledger(url) != ledger(other)  # the perturbation did change what came later
    finally:
        databases.drop(other)


def independent_baselines(market, start_equity: float, trades: list[tuple]) -> dict[str, float]:
    """Each baseline's final equity, computed here from the prices and the documented rules."""
    decisions, end = DAYS[:14], DAYS[13]
    close = {s: market[s][end][1] for s in SYMBOLS}
    # recommendations: replay the ledger up to the last decision's close.
    cash, held = start_equity, dict.fromkeys(SYMBOLS, 0.0)
    for _, s, side, q, p, f, at in trades:
        if at <= midnight(end + timedelta(days=1)):
            sign = 1 if side == "buy" else -1
            held[s] += sign * float(q)
            cash -= sign * float(q) * float(p) + float(f)
    out = {"recommendations": cash + sum(held[s] * close[s] for s in SYMBOLS), "cash": start_equity}

    def buy(cash: float, s: str, day: date, value: float) -> tuple[float, float]:
        o = market[s][day][0]
        q = min(value / o, cash / (o * (1 + SLIPPAGE) * (1 + FEE)))
        return q, cash - q * o * (1 + SLIPPAGE) * (1 + FEE)

    # buy_and_hold: half each at the second day's open, held.
    cash, held = start_equity, {}
    for s in SYMBOLS:
        held[s], cash = buy(cash, s, decisions[1], start_equity / 2)
    out["buy_and_hold"] = cash + sum(held[s] * close[s] for s in SYMBOLS)
    # strategy_only: a half sleeve bought the open after the state turns long, sold the open after it stops.
    cash, held = start_equity, dict.fromkeys(SYMBOLS, 0.0)
    for i in range(1, len(decisions)):
        day = decisions[i]
        equity_at_open = cash + sum(held[s] * market[s][day][0] for s in SYMBOLS)
        for s in SYMBOLS:
            if held[s] and (i - 1) not in LONG[s]:
                cash += held[s] * market[s][day][0] * (1 - SLIPPAGE) * (1 - FEE)
                held[s] = 0.0
        for s in SYMBOLS:
            if (i - 1) in LONG[s] and (i - 2) not in LONG[s]:
                held[s], cash = buy(cash, s, day, equity_at_open / 2)
    out["strategy_only"] = cash + sum(held[s] * close[s] for s in SYMBOLS)
    return out


def test_the_evaluation_rows_equal_baselines_computed_independently(paper_run):
    url, market = paper_run
    with psycopg.connect(url) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT baseline, generator, start_date, end_date, total_return, fees, max_drawdown, n_decisions,"
                " hit_rate FROM recommendations.evaluation WHERE account = %s",
                (ACCOUNT,),
            ).fetchall()
        }
    assert set(rows) == {"recommendations", "unprotected", "cash", "buy_and_hold", "strategy_only"}
    assert {(g, a, b) for g, a, b, *_ in rows.values()} == {("rules", FIRST, LAST_DECISION)}  # one window
    with psycopg.connect(url) as conn:  # without an LLM there is no shadow generation
        assert conn.execute("SELECT count(*) FROM recommendations.shadow_daily").fetchone()[0] == 0
    expected = independent_baselines(market, 10_000.0, ledger(url))
    for baseline, final in expected.items():
        total = rows[baseline][3]
        assert abs(total - (final / 10_000.0 - 1)) < 1e-6, (baseline, total, final / 10_000 - 1)
    assert rows["cash"][3] == 0.0 and rows["cash"][4] == 0.0
    assert rows["buy_and_hold"][4] > 0 and rows["strategy_only"][4] > 0  # both paid fees
    assert rows["recommendations"][6] == 14  # one decision per day
    # hit_rate: the share of the days in the market that gained; buy_and_hold is in from DAYS[1]'s open to the end.
    cash, q = 10_000.0, {}
    for s in SYMBOLS:
        o = market[s][DAYS[1]][0]
        q[s] = min(5_000.0 / o, cash / (o * (1 + SLIPPAGE) * (1 + FEE)))
        cash -= q[s] * o * (1 + SLIPPAGE) * (1 + FEE)
    equity = [10_000.0] + [cash + sum(q[s] * market[s][d][1] for s in SYMBOLS) for d in DAYS[1:14]]
    gains = [b > a for a, b in zip(equity, equity[1:], strict=False)]
    assert abs(rows["buy_and_hold"][7] - sum(gains) / len(gains)) < 1e-9


def llm_server() -> ScriptedServer:
    """Answers with the account's current allocation held (a valid, schema-conforming reply)."""

    def reply(request) -> Reply:
        prompt = request.json()["messages"][1]["content"]
        state = json.loads(prompt.split("(JSON):\n", 1)[1].split("\n\n", 1)[0])
        recs = [
            {
                "symbol": s["symbol"],
                "action": "buy" if (s["strategy_state"] or {}).get("position") == "long" else "sell",
                "target_allocation": 0.1 if (s["strategy_state"] or {}).get("position") == "long" else 0.0,
                "entry": None,
                "stop_loss": None,
                "take_profit": None,
                "horizon_days": 3,
                "confidence": 0.6,
                "rationale": "follows the strategy state",
                "evidence": [],
            }
            for s in state["symbols"]
        ]
        content = json.dumps({"account": state["account"], "recommendations": recs})
        return Reply(200, json.dumps({"choices": [{"message": {"content": content}}]}).encode())

    return ScriptedServer(reply)


@pytest.fixture(scope="module")
def llm_run(databases):
    """The same market with an answering LLM: the account follows the LLM, the rules engine runs in its shadow."""
    url = databases.create()
    market = prices()
    build_market(url, market)
    with llm_server() as server:
        assert run(url, LLMResource(base_url=server.url + "/v1", model="test-model")).success
        prompts = [
            json.loads(r.json()["messages"][1]["content"].split("(JSON):\n", 1)[1].split("\n\n", 1)[0])
            for r in server.requests
        ]
    yield url, market, prompts
    databases.drop(url)


def test_the_prompt_carries_the_state_with_its_as_of_and_the_evaluation_has_llm_rows(llm_run):
    url, _, prompts = llm_run
    assert prompts
    for p in prompts:
        decided = datetime.fromisoformat(p["decision_time_utc"])
        for s in p["symbols"]:
            assert datetime.fromisoformat(s["strategy_state"]["as_of"]) < decided
            assert datetime.fromisoformat(s["strategy_state"]["as_of"]) >= decided - timedelta(days=1)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT generator, baseline, start_date, end_date FROM recommendations.evaluation WHERE account = %s",
            (ACCOUNT,),
        ).fetchall()
        fills = conn.execute("SELECT count(*) FROM portfolio.trades WHERE account = %s", (ACCOUNT,)).fetchone()[0]
    # The LLM's ledger with the baselines once, and the rules engine's shadow ledger beside it, on one window.
    assert sorted((g, b) for g, b, *_ in rows) == [
        ("llm", "buy_and_hold"),
        ("llm", "cash"),
        ("llm", "recommendations"),
        ("llm", "strategy_only"),
        ("llm", "unprotected"),
        ("rules", "recommendations"),
    ]
    assert {(a, b) for _, _, a, b in rows} == {(FIRST, LAST_DECISION)} and fills > 0


def shadow_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT decision_date, symbol, generator, decided_at, action, target_allocation, current_allocation,"
            " reference_price FROM recommendations.shadow_daily WHERE account = %s ORDER BY decision_date, symbol",
            (ACCOUNT,),
        ).fetchall()


def shadow_fills(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT trade_id, symbol, side, quantity, price, fee, executed_at FROM recommendations.shadow_fills"
            " WHERE account = %s ORDER BY executed_at, trade_id",
            (ACCOUNT,),
        ).fetchall()


def test_the_account_follows_the_llm_while_the_rules_engine_decides_in_its_shadow(llm_run):
    url, _, _ = llm_run
    with psycopg.connect(url) as conn:
        followed = {
            (d, s): (g, a, t)
            for d, s, g, a, t in conn.execute(
                "SELECT decision_date, symbol, generator, action, target_allocation FROM recommendations.daily"
                " WHERE account = %s",
                (ACCOUNT,),
            ).fetchall()
        }
    shadows = {(d, s): (g, a, t) for d, s, g, _, a, t, *_ in shadow_rows(url)}
    assert set(shadows) == set(followed) and len(shadows) == 14 * len(SYMBOLS)  # every account-day, both symbols
    assert {g for g, *_ in followed.values()} == {"llm"} and {g for g, *_ in shadows.values()} == {"rules"}
    # The paper account's fills follow the LLM's rows (the server targets 10% or 0%), never the rules engine's.
    paper = ledger(url)
    for trade_id, symbol, _side, quantity, price, *_ in paper:
        decided = date.fromisoformat(trade_id.removeprefix("paper-")[:10])
        assert followed[(decided, symbol)][1] in ("buy", "sell")
        assert float(quantity * price) < 0.1 * 10_000 * 1.2  # never more than the LLM's 10% (with drift)
    assert all(0.09 < t < 0.11 for _, a, t in followed.values() if a == "buy")  # 10%, or held where it drifted
    assert paper and [t[1:] for t in paper] != [t[1:] for t in shadow_fills(url)]
    # The rules engine follows the strategy state in its own ledger: a buy when it turns long, a sell on its exit.
    for s, long_days in LONG.items():
        assert shadows[(DAYS[long_days.start], s)][1] == "buy" and shadows[(DAYS[long_days.start], s)][2] > 0
        assert all(shadows[(DAYS[i], s)][2] > 0 for i in long_days)
        assert shadows[(DAYS[long_days.stop], s)][1] == "sell"
    assert not all(0.09 < t < 0.11 for _, a, t in shadows.values() if a == "buy")  # its own sizing, not the LLM's


def test_the_rules_shadow_ledger_equals_an_independent_replay(llm_run):
    """Replay the shadow recommendations here by the documented paper rules (next open, slippage, fee, sells
    first): the shadow fills, the allocations the rules engine saw and the evaluation's rules row all agree."""
    url, market, _ = llm_run
    rows = shadow_rows(url)
    by_day: dict[date, list[tuple]] = {}
    for d, s, _, _, action, target, current, _ in rows:
        by_day.setdefault(d, []).append((s, action, target, current))
    cash, held = 10_000.0, dict.fromkeys(SYMBOLS, 0.0)
    expected_fills = []
    for day in DAYS[:14]:
        close_value = {s: held[s] * market[s][day][1] for s in SYMBOLS}
        equity_close = cash + sum(close_value.values())
        for s, _, _, current in by_day[day]:  # the state the rules engine decided from
            assert abs(current - close_value[s] / equity_close) < 1e-6, (day, s, current)
        nxt = day + timedelta(days=1)
        if day == DAYS[13] or nxt not in market[SYMBOLS[0]]:
            continue
        opens = {s: market[s][nxt][0] for s in SYMBOLS}
        equity_open = cash + sum(held[s] * opens[s] for s in SYMBOLS)
        trades = [t for t in sorted(by_day[day]) if t[1] in ("buy", "sell")]
        for s, _, target, _ in trades:  # sells first
            want = target * equity_open / opens[s]
            if want < held[s]:
                q = held[s] if target <= 0 else held[s] - want
                p = opens[s] * (1 - SLIPPAGE)
                if q * p >= 1.0:
                    cash += q * p * (1 - FEE)
                    held[s] -= q
                    expected_fills.append((s, "sell", q, p))
        for s, _, target, _ in trades:
            want = target * equity_open / opens[s]
            if want > held[s]:
                p = opens[s] * (1 + SLIPPAGE)
                q = min(want - held[s], cash / (p * (1 + FEE)))
                if q * p >= 1.0:
                    cash -= q * p * (1 + FEE)
                    held[s] += q
                    expected_fills.append((s, "buy", q, p))
    got = [(s, side, float(q), float(p)) for _, s, side, q, p, *_ in shadow_fills(url)]
    assert len(got) == len(expected_fills) and got
    for (s, side, q, p), (es, eside, eq, ep) in zip(got, expected_fills, strict=True):
        assert (s, side) == (es, eside) and abs(q - eq) < 1e-6 and abs(p - ep) < 1e-6
    final = cash + sum(held[s] * market[s][DAYS[13]][1] for s in SYMBOLS)
    with psycopg.connect(url) as conn:
        total, fees, n = conn.execute(
            "SELECT total_return, fees, n_decisions FROM recommendations.evaluation"
            " WHERE account = %s AND generator = 'rules' AND baseline = 'recommendations'",
            (ACCOUNT,),
        ).fetchone()
    assert abs(total - (final / 10_000.0 - 1)) < 1e-6 and fees > 0 and n == 14


def test_perturbing_prices_after_day_d_changes_no_shadow_row_up_to_d(llm_run, databases):
    url, _, _ = llm_run
    cut = DAYS[7]
    other = databases.create()
    try:
        build_market(other, prices(perturb_after=cut))
        with llm_server() as server:
            assert run(other, LLMResource(base_url=server.url + "/v1", model="test-model")).success
        up_to = midnight(cut + timedelta(days=1))
        assert [r for r in shadow_rows(url) if r[0] <= cut] == [r for r in shadow_rows(other) if r[0] <= cut]
        before = [t for t in shadow_fills(url) if t[-1] <= up_to]
        assert before and before == [t for t in shadow_fills(other) if t[-1] <= up_to]
        assert shadow_rows(url) != shadow_rows(other)  # the perturbation did change what came later
    finally:
        databases.drop(other)

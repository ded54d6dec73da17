"""Gathering a recommendation's inputs point-in-time, storing what was generated, and scoring it later.

Decision time for day D is the end of D (D+1 00:00 UTC): prices are D's daily close, signals and regimes are
D's, the strategy choice is the latest decided before that moment, documents are those with as_of <= it, and
the account's state counts deposits and trades up to it. Nothing later is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import psycopg
from psycopg.types.json import Jsonb

from fks_pipelines.lib.db import analytics
from fks_pipelines.lib.db.portfolio import (
    PAPER_PREFIX,
    AccountState,
    account_states,
    account_states_at,
    equity,
    holdings,
)
from fks_pipelines.lib.errors import DatabaseError, FksError
from fks_pipelines.lib.portfolio.ledger import Trade
from fks_pipelines.lib.recommend.generate import Generation
from fks_pipelines.lib.recommend.schema import AccountContext, RetrievedDocument, SymbolContext

Retriever = Callable[[str, datetime], list[RetrievedDocument]]


def decision_time(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def market_inputs(conn: psycopg.Connection, market: str, symbols: list[str], day: date) -> dict[str, dict]:
    """Per symbol, what is known at the end of ``day`` (symbols without a close that day are left out)."""
    at = decision_time(day)
    start = at - timedelta(days=1)
    out: dict[str, dict] = {}
    for symbol, close, r, vol in conn.execute(
        "SELECT d.symbol, d.close::float8, r.simple_return, r.volatility_30d FROM marts.fct_ohlcv_1d d"
        " LEFT JOIN marts.fct_returns r USING (market, symbol, bucket)"
        " WHERE d.market = %s AND d.symbol = ANY(%s) AND d.bucket = %s",
        (market, symbols, start),
    ).fetchall():
        out[symbol] = {
            "price": close,
            "return_1d": r,
            "daily_volatility": vol / math.sqrt(365) if vol else None,
            "indicators": {},
            "signals": {},
            "strategy": None,
            "regime": None,
            "state": None,
        }
    columns = ("close", "rsi_14", "macd_hist", "bb_lower", "bb_upper", "sma_20", "sma_50", "atr_14")
    for row in conn.execute(
        f"SELECT symbol, {', '.join(columns)}, strategy_signals FROM analytics.signals"
        " WHERE market = %s AND symbol = ANY(%s) AND bucket = %s AND as_of < %s",
        (market, symbols, start, at),
    ).fetchall():
        if row[0] in out:
            out[row[0]]["indicators"] = dict(zip(columns, row[1:-1], strict=True))
            out[row[0]]["signals"] = {
                k: {"entry": v["entry"], "exit": v["exit"], "params": v["params"]} for k, v in row[-1].items()
            }
    for symbol, strategy, params, position, since, entry, pnl, as_of in conn.execute(
        "SELECT symbol, strategy, params, position, since, entry_price, unrealised_pnl, as_of"
        " FROM analytics.strategy_state WHERE market = %s AND symbol = ANY(%s) AND bucket = %s AND as_of < %s",
        (market, symbols, start, at),
    ).fetchall():
        if symbol in out:
            out[symbol]["state"] = {
                "strategy": strategy,
                "params": params,
                "position": position,
                "since": since.isoformat() if since else None,
                "entry_price": entry,
                "unrealised_pnl": pnl,
                "as_of": as_of.isoformat(),
            }
    for symbol, regime, probabilities in conn.execute(
        "SELECT symbol, regime, next_day_probabilities FROM analytics.market_regimes"
        " WHERE market = %s AND symbol = ANY(%s) AND bucket = %s",
        (market, symbols, start),
    ).fetchall():
        if symbol in out:
            out[symbol]["regime"] = {"regime": regime, "next_day_probabilities": probabilities}
    # The same latest-choice query as every other reader (analytics.latest_choices: one ranking of re-decisions).
    for symbol, c in analytics.latest_choices(conn, market, symbols, at).items():
        if symbol in out:
            out[symbol]["strategy"] = {
                "strategy": c["strategy"],
                "params": c["params"],
                "oos_sharpe": c["oos_sharpe"],
                "oos_total_return": c["oos_total_return"],
                "oos_max_drawdown": c["oos_max_drawdown"],
                "buy_and_hold_return": c["buy_and_hold_return"],
                "decided_at": c["decided_at"].isoformat(),
            }
    return out


def contexts(
    conn: psycopg.Connection, day: date, symbols: list[str], market: str, retrieve: Retriever
) -> list[AccountContext]:
    """Each account's decision context for ``day``: its state, the market inputs and the retrieved documents,
    all as of the decision time."""
    at = decision_time(day)
    accounts = [s for s in account_states(conn, at) if s.market == market]
    if not accounts:
        return []
    inputs = market_inputs(conn, market, symbols, day)
    documents = {s: retrieve(s, at) for s in inputs}  # once per symbol, shared by every account
    out = []
    for state in accounts:
        value = {s: q * inputs[s]["price"] for s, q in state.positions.items() if s in inputs}
        equity = state.cash + sum(value.values())
        symbol_contexts = [
            SymbolContext(
                symbol=s,
                current_allocation=value.get(s, 0.0) / equity if equity > 0 else 0.0,
                documents=documents[s],
                **inputs[s],
            )
            for s in symbols
            if s in inputs
        ]
        out.append(AccountContext(state.account, state.kind, at, equity, state.cash, symbol_contexts))
    return out


def store_generation(conn: psycopg.Connection, day: date, generation: Generation, decided_at: datetime) -> None:
    """Replace the account's recommendation for ``day`` (audit row and one row per symbol) in one transaction."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM recommendations.generations WHERE decision_date = %s AND account = %s",
            (day, generation.account),
        )
        conn.execute(
            "INSERT INTO recommendations.generations (decision_date, account, generator, model, decided_at, prompt,"
            " raw_response, llm_error, latency_ms, prompt_tokens, completion_tokens, attempts, retrieved_ids)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                day,
                generation.account,
                generation.generator,
                generation.model,
                decided_at,
                Jsonb(generation.messages),
                generation.raw_response,
                generation.llm_error,
                generation.latency_ms,
                generation.prompt_tokens,
                generation.completion_tokens,
                generation.attempts,
                Jsonb(generation.retrieved_ids),
            ),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO recommendations.daily (decision_date, account, symbol, generator, action,"
                " target_allocation, proposed_allocation, current_allocation, entry, stop_loss, take_profit,"
                " horizon_days, confidence, rationale, evidence, clamps, reference_price)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        day,
                        generation.account,
                        r.symbol,
                        generation.generator,
                        r.action,
                        r.target_allocation,
                        r.proposed_allocation,
                        r.current_allocation,
                        r.entry,
                        r.stop_loss,
                        r.take_profit,
                        r.horizon_days,
                        r.confidence,
                        r.rationale,
                        Jsonb(r.evidence),
                        Jsonb(r.clamps),
                        r.reference_price,
                    )
                    for r in generation.recommendations
                ],
            )


def store_day(conn: psycopg.Connection, day: date, generations: list[tuple[Generation, datetime]]) -> None:
    """Replace ``day``'s recommendation for every account in ``generations`` (each with its decision time)
    all or nothing: one transaction, so a failure leaves the day's previous rows as they were."""
    with conn.transaction():
        for generation, decided_at in generations:
            store_generation(conn, day, generation, decided_at)


TRACK_RECORD_SQL = """
WITH scored AS (
    SELECT r.decision_date, r.account, r.symbol, r.generator, r.action, r.target_allocation, r.reference_price,
           g.decided_at,
           (SELECT d.close::float8 FROM marts.fct_ohlcv_1d d WHERE d.market = a.market AND d.symbol = r.symbol
             AND d.bucket = g.decided_at) AS close_1d,
           (SELECT d.close::float8 FROM marts.fct_ohlcv_1d d WHERE d.market = a.market AND d.symbol = r.symbol
             AND d.bucket = g.decided_at + interval '6 days') AS close_7d,
           (SELECT rr.volatility_30d FROM marts.fct_returns rr WHERE rr.market = a.market AND rr.symbol = r.symbol
             AND rr.bucket = g.decided_at - interval '1 day') / sqrt(365) AS sigma
    FROM recommendations.daily r
    JOIN recommendations.generations g USING (decision_date, account)
    JOIN portfolio.accounts a USING (account)
)
INSERT INTO recommendations.track_record (decision_date, account, symbol, generator, action, target_allocation,
    return_1d, return_7d, hit_1d, hit_7d, paper_pnl_1d, paper_pnl_7d)
SELECT decision_date, account, symbol, generator, action, target_allocation,
       close_1d / reference_price - 1, close_7d / reference_price - 1,
       CASE WHEN close_1d IS NULL THEN NULL
            WHEN action = 'buy' THEN close_1d > reference_price
            WHEN action = 'sell' THEN close_1d < reference_price
            ELSE abs(close_1d / reference_price - 1) < coalesce(sigma, 0.03) END,
       CASE WHEN close_7d IS NULL THEN NULL
            WHEN action = 'buy' THEN close_7d > reference_price
            WHEN action = 'sell' THEN close_7d < reference_price
            ELSE abs(close_7d / reference_price - 1) < coalesce(sigma, 0.03) * sqrt(7) END,
       NULL, NULL
FROM scored
ON CONFLICT (decision_date, account, symbol) DO UPDATE SET
    generator = EXCLUDED.generator, action = EXCLUDED.action, target_allocation = EXCLUDED.target_allocation,
    return_1d = EXCLUDED.return_1d, return_7d = EXCLUDED.return_7d, hit_1d = EXCLUDED.hit_1d, hit_7d = EXCLUDED.hit_7d,
    scored_at = now()
"""


def score_track_record(conn: psycopg.Connection) -> int:
    """Score every stored recommendation against the closes 1 and 7 days after its decision (unknown ones
    stay NULL until the data exists); paper P&L = target allocation x equity at decision x return."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM recommendations.track_record t WHERE NOT EXISTS (SELECT 1 FROM recommendations.daily r"
            " WHERE (r.decision_date, r.account, r.symbol) = (t.decision_date, t.account, t.symbol))"
        )
        n = conn.execute(TRACK_RECORD_SQL).rowcount
        equities = {}
        generations = conn.execute(
            "SELECT decision_date, account, decided_at FROM recommendations.generations"
        ).fetchall()
        # Every account's state at every decision time from one replay of the ledger (linear, not per time).
        states_at = {
            at: {s.account: s for s in states}
            for at, states in account_states_at(conn, [g[2] for g in generations]).items()
        }
        for day, account, decided_at in generations:
            state = states_at[decided_at].get(account)
            equities[(day, account)] = equity(conn, state, decided_at) if state else 0.0
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE recommendations.track_record SET paper_pnl_1d = target_allocation * %s * return_1d,"
                " paper_pnl_7d = target_allocation * %s * return_7d WHERE decision_date = %s AND account = %s",
                [(e, e, d, a) for (d, a), e in equities.items()],
            )
    return n


def latest_rows(conn: psycopg.Connection, day: date) -> list[dict]:
    """The day's sized recommendations, one dict per (account, symbol), as the demo and Discord show them."""
    cursor = conn.execute(
        "SELECT account, symbol, generator, action, target_allocation, proposed_allocation, current_allocation,"
        " reference_price, entry, stop_loss, take_profit, horizon_days, confidence, rationale, evidence, clamps"
        " FROM recommendations.daily WHERE decision_date = %s ORDER BY account, symbol",
        (day,),
    )
    if cursor.description is None:  # only a statement that returns no rows has none
        raise DatabaseError("the recommendations query returned no result set")
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def track_record_summary(conn: psycopg.Connection) -> list[tuple]:
    """Per (account, generator): scored recommendations, 1- and 7-day hit rates and paper P&L."""
    return conn.execute(
        "SELECT account, generator, count(*), avg(hit_1d::int), avg(hit_7d::int), sum(paper_pnl_1d), sum(paper_pnl_7d)"
        " FROM recommendations.track_record GROUP BY account, generator ORDER BY account, generator"
    ).fetchall()


EVALUATION_COLUMNS = (
    "account",
    "generator",
    "baseline",
    "period",
    "start_date",
    "end_date",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "turnover",
    "fees",
    "hit_rate",
    "n_decisions",
)


def paper_windows(conn: psycopg.Connection, market: str) -> list[tuple[str, date, date, str, int]]:
    """Per paper account of ``market`` with recommendations: (account, first decision day, last decision day,
    generator, decision days). The generator is 'llm' or 'rules', or 'llm+rules' when the window mixes them."""
    return conn.execute(
        "SELECT g.account, min(g.decision_date), max(g.decision_date),"
        " string_agg(DISTINCT g.generator, '+' ORDER BY g.generator), count(*)::int"
        " FROM recommendations.generations g JOIN portfolio.accounts a USING (account)"
        " WHERE a.mode = 'paper' AND a.market = %s GROUP BY g.account ORDER BY g.account",
        (market,),
    ).fetchall()


def replace_evaluation(conn: psycopg.Connection, accounts: list[str], rows: list[dict]) -> int:
    """Make the evaluation of ``accounts`` exactly ``rows`` (dicts with EVALUATION_COLUMNS), in one transaction.
    A NaN or infinite number is refused before anything is written (the previous rows stay)."""
    for r in rows:
        bad = [c for c in EVALUATION_COLUMNS if isinstance(r[c], float) and not math.isfinite(r[c])]
        if bad:
            raise FksError(
                f"evaluation of {r['account']} ({r['baseline']}, {r['period']}): {', '.join(bad)} not finite"
            )
    with conn.transaction():
        conn.execute("DELETE FROM recommendations.evaluation WHERE account = ANY(%s)", (accounts,))
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO recommendations.evaluation ({', '.join(EVALUATION_COLUMNS)})"
                f" VALUES ({', '.join(['%s'] * len(EVALUATION_COLUMNS))})",
                [tuple(r[c] for c in EVALUATION_COLUMNS) for r in rows],
            )
    return len(rows)


def evaluation_table(conn: psycopg.Connection, period: str | None = "window") -> list[dict]:
    """The evaluation rows of one ``period`` ('window', a year 'YYYY', or None for all), baselines in their
    documented order, as the demo prints them."""
    cursor = conn.execute(
        f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM recommendations.evaluation"
        " WHERE %(period)s::text IS NULL OR period = %(period)s ORDER BY account, generator, period,"
        " array_position(ARRAY['recommendations', 'cash', 'buy_and_hold', 'strategy_only'], baseline)",
        {"period": period},
    )
    return [dict(zip(EVALUATION_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def window_allocations(conn: psycopg.Connection, first: date, last: date) -> list[tuple]:
    """(decision_date, account, symbol, action, target, current) of every non-zero target in [first, last]."""
    return conn.execute(
        "SELECT decision_date, account, symbol, action, target_allocation, current_allocation"
        " FROM recommendations.daily WHERE decision_date BETWEEN %s AND %s AND target_allocation > 0"
        " ORDER BY decision_date, account, symbol",
        (first, last),
    ).fetchall()


def recommendation_counts(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """(generator, action, recommendations) over recommendations.daily, every day and account."""
    return [
        (g, a, int(n))
        for g, a, n in conn.execute(
            "SELECT generator, action, count(*) FROM recommendations.daily GROUP BY generator, action ORDER BY 1, 2"
        ).fetchall()
    ]


@dataclass(frozen=True)
class LlmStats:
    """How the LLM fared over recommendations.generations: ``fallbacks`` are days the rules answered because the
    LLM failed (llm_error set), ``failures`` every generation with an LLM error, ``latencies_ms`` the LLM's answer
    times; ``last_error``/``last_generator`` describe the latest generation."""

    generations: int
    llm_answers: int
    failures: int
    fallbacks: int
    latencies_ms: list[float]
    last_generator: str | None
    last_error: str | None
    last_decision_date: date | None


def llm_stats(conn: psycopg.Connection) -> LlmStats:
    totals = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE generator = 'llm'),"
        " count(*) FILTER (WHERE llm_error IS NOT NULL),"
        " count(*) FILTER (WHERE llm_error IS NOT NULL AND generator <> 'llm'),"
        " coalesce(array_agg(latency_ms) FILTER (WHERE latency_ms IS NOT NULL), '{}')"
        " FROM recommendations.generations"
    ).fetchone()
    last = conn.execute(
        "SELECT generator, llm_error, decision_date FROM recommendations.generations"
        " ORDER BY decision_date DESC, created_at DESC LIMIT 1"
    ).fetchone()
    n, llm, failures, fallbacks, latencies = totals if totals else (0, 0, 0, 0, [])
    return LlmStats(
        int(n),
        int(llm),
        int(failures),
        int(fallbacks),
        [float(x) for x in latencies],
        last[0] if last else None,
        last[1] if last else None,
        last[2] if last else None,
    )


def decision_evidence(conn: psycopg.Connection, day: date) -> list[tuple[str, str, str | None, datetime, str]]:
    """What the day's decisions read from the knowledge layer: (account, kind, symbol, as_of, first line) of each
    retrieved document, the day's own facts first (newest as_of), then older ones such as analogs."""
    return conn.execute(
        "SELECT g.account, d.kind, d.symbol, d.as_of, split_part(d.text, E'\\n', 1)"
        " FROM recommendations.generations g"
        " CROSS JOIN LATERAL jsonb_array_elements_text(g.retrieved_ids) AS r (id)"
        " JOIN knowledge.documents d ON d.id = r.id"
        " WHERE g.decision_date = %s ORDER BY g.account, d.as_of DESC, d.symbol, d.kind",
        (day,),
    ).fetchall()


# Shadow generations (migration 014): when an LLM decides, the rules engine decides too, from the same inputs,
# against its own ledger (recommendations.shadow_fills); the paper account follows only the LLM.
SHADOW_GENERATOR = "rules"


def shadow_state(conn: psycopg.Connection, state: AccountState, at: datetime, generator: str) -> AccountState:
    """``state``'s account as the shadow ledger of ``generator`` holds it at ``at``: the same deposits and imported
    trades, the shadow fills instead of the paper fills, nothing after ``at``."""
    trades = conn.execute(
        "SELECT symbol, side, quantity::float8, price::float8, fee::float8 FROM ("
        " SELECT symbol, side, quantity, price, fee, executed_at, trade_id FROM portfolio.trades"
        "  WHERE account = %(a)s AND executed_at <= %(at)s AND trade_id NOT LIKE %(paper)s"
        " UNION ALL SELECT symbol, side, quantity, price, fee, executed_at, trade_id FROM recommendations.shadow_fills"
        "  WHERE account = %(a)s AND generator = %(g)s AND executed_at <= %(at)s"
        ") t ORDER BY executed_at, trade_id",
        {"a": state.account, "at": at, "paper": f"{PAPER_PREFIX}%", "g": generator},
    ).fetchall()
    cash, held = holdings(state.net_deposits, trades)
    return replace(state, cash=cash, positions=held)


def shadow_trade_history(conn: psycopg.Connection, account: str, generator: str) -> list[Trade]:
    """The shadow ledger's trades in time order: the imported ones and the shadow fills (no paper fills)."""
    return [
        Trade(*row)
        for row in conn.execute(
            "SELECT trade_id, symbol, side, quantity, price, fee, executed_at FROM portfolio.trades"
            " WHERE account = %(a)s AND trade_id NOT LIKE %(paper)s"
            " UNION ALL SELECT trade_id, symbol, side, quantity, price, fee, executed_at"
            " FROM recommendations.shadow_fills WHERE account = %(a)s AND generator = %(g)s"
            " ORDER BY executed_at, trade_id",
            {"a": account, "paper": f"{PAPER_PREFIX}%", "g": generator},
        ).fetchall()
    ]


def store_shadow_day(conn: psycopg.Connection, day: date, generations: list[tuple[Generation, datetime]]) -> None:
    """Replace ``day``'s shadow recommendations of the accounts in ``generations`` (one transaction)."""
    with conn.transaction(), conn.cursor() as cur:
        for generation, decided_at in generations:
            cur.execute(
                "DELETE FROM recommendations.shadow_daily WHERE decision_date = %s AND account = %s AND generator = %s",
                (day, generation.account, generation.generator),
            )
            cur.executemany(
                "INSERT INTO recommendations.shadow_daily (decision_date, account, generator, symbol, decided_at,"
                " action, target_allocation, current_allocation, confidence, rationale, reference_price)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        day,
                        generation.account,
                        generation.generator,
                        r.symbol,
                        decided_at,
                        r.action,
                        r.target_allocation,
                        r.current_allocation,
                        r.confidence,
                        r.rationale,
                        r.reference_price,
                    )
                    for r in generation.recommendations
                ],
            )


def shadow_targets(conn: psycopg.Connection, day: date, account: str, generator: str) -> list[tuple[str, str, float]]:
    """(symbol, action, target_allocation) of the account's shadow recommendation for ``day``."""
    return conn.execute(
        "SELECT symbol, action, target_allocation FROM recommendations.shadow_daily"
        " WHERE decision_date = %s AND account = %s AND generator = %s ORDER BY symbol",
        (day, account, generator),
    ).fetchall()


def replace_shadow_fills(
    conn: psycopg.Connection, account: str, generator: str, decision_day: date, fills: list[Trade]
) -> None:
    """Make the shadow ledger's fills for ``decision_day``'s shadow recommendation exactly ``fills``."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "DELETE FROM recommendations.shadow_fills WHERE account = %s AND generator = %s AND trade_id LIKE %s",
            (account, generator, f"{PAPER_PREFIX}{decision_day.isoformat()}-%"),
        )
        cur.executemany(
            "INSERT INTO recommendations.shadow_fills (account, generator, trade_id, symbol, side, quantity, price,"
            " fee, executed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (account, generator, t.trade_id, t.symbol, t.side, t.quantity, t.price, t.fee, t.executed_at)
                for t in fills
            ],
        )


def clear_shadows(conn: psycopg.Connection, market: str, first: date, last: date, *, keep_days: bool) -> None:
    """Before a run over [first, last]: drop the shadow fills from ``first``'s on (the run replays them) and, unless
    ``keep_days`` (an LLM is configured and regenerates them), the shadow recommendations of those days."""
    accounts = "SELECT account FROM portfolio.accounts WHERE market = %s"
    with conn.transaction():
        conn.execute(
            f"DELETE FROM recommendations.shadow_fills WHERE account IN ({accounts}) AND executed_at > %s",
            (market, decision_time(first) - timedelta(days=1)),
        )
        if not keep_days:
            conn.execute(
                f"DELETE FROM recommendations.shadow_daily WHERE account IN ({accounts})"
                " AND decision_date BETWEEN %s AND %s",
                (market, first, last),
            )


def shadow_windows(conn: psycopg.Connection, market: str) -> dict[tuple[str, str], int]:
    """(paper account, shadow generator) -> its shadow decision days, for the accounts of ``market``."""
    return {
        (a, g): int(n)
        for a, g, n in conn.execute(
            "SELECT s.account, s.generator, count(DISTINCT s.decision_date) FROM recommendations.shadow_daily s"
            " JOIN portfolio.accounts a USING (account) WHERE a.mode = 'paper' AND a.market = %s"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (market,),
        ).fetchall()
    }


@dataclass(frozen=True)
class LedgerHole:
    """A paper account whose ledger is incomplete from ``first`` to ``last`` (its last decided day): a re-run of
    earlier days replayed the ledger and removed the fills of these days, decided from the state it replaced.
    ``removed``: the trade ids removed and not replayed since."""

    account: str
    first: date
    last: date
    removed: list[str]


def record_ledger_holes(
    conn: psycopg.Connection, market: str, first: date, last: date, removed: dict[str, set[str]]
) -> list[LedgerHole]:
    """After a run of the daily recommendation over [``first``, ``last``] for ``market`` (``removed``: per account,
    the paper fill ids the run deleted and did not write again): record, per paper account, from which day its
    ledger is incomplete, and return every hole of the market's accounts.

    A hole starts the day after ``last`` when the account has decided days after it (their fills are gone, and
    their recommendations were sized from the state the run replaced). A hole recorded before stays unless this
    run started on or before its first day (it replayed from there); the earlier start wins."""
    with conn.transaction():
        held = {
            a: (f, set(r))
            for a, f, r in conn.execute(
                "SELECT h.account, h.incomplete_from, h.removed_fills FROM recommendations.ledger_holes h"
                " JOIN portfolio.accounts a USING (account) WHERE a.mode = 'paper' AND a.market = %s",
                (market,),
            ).fetchall()
        }
        decided_after = {
            a
            for (a,) in conn.execute(
                "SELECT DISTINCT g.account FROM recommendations.generations g JOIN portfolio.accounts a"
                " USING (account) WHERE a.mode = 'paper' AND a.market = %s AND g.decision_date > %s",
                (market, last),
            ).fetchall()
        }
        for account in sorted(set(held) | decided_after):
            kept = held[account][0] if account in held and held[account][0] < first else None
            starts = [d for d in (kept, last + timedelta(days=1) if account in decided_after else None) if d]
            if not starts:
                conn.execute("DELETE FROM recommendations.ledger_holes WHERE account = %s", (account,))
                continue
            ids = held.get(account, (None, set()))[1] | removed.get(account, set())
            present = {
                t
                for (t,) in conn.execute(
                    "SELECT trade_id FROM portfolio.trades WHERE account = %s AND trade_id = ANY(%s)",
                    (account, sorted(ids)),
                ).fetchall()
            }
            conn.execute(
                "INSERT INTO recommendations.ledger_holes (account, incomplete_from, removed_fills)"
                " VALUES (%s, %s, %s) ON CONFLICT (account) DO UPDATE SET incomplete_from ="
                " EXCLUDED.incomplete_from, removed_fills = EXCLUDED.removed_fills, recorded_at = now()",
                (account, min(starts), Jsonb(sorted(ids - present))),
            )
    return ledger_holes(conn, market)


def ledger_holes(conn: psycopg.Connection, market: str) -> list[LedgerHole]:
    """The paper accounts of ``market`` whose ledger is incomplete (record_ledger_holes), by account."""
    return [
        LedgerHole(a, f, last, list(r))
        for a, f, last, r in conn.execute(
            "SELECT h.account, h.incomplete_from, (SELECT max(g.decision_date) FROM recommendations.generations g"
            " WHERE g.account = h.account), h.removed_fills FROM recommendations.ledger_holes h"
            " JOIN portfolio.accounts a USING (account) WHERE a.mode = 'paper' AND a.market = %s ORDER BY h.account",
            (market,),
        ).fetchall()
    ]


def rerun_command(holes: list[LedgerHole]) -> str:
    """The command that fills every hole: one run of the daily recommendation over the days they span."""
    first, last = min(h.first for h in holes), max(h.last for h in holes)
    return (
        "dagster asset materialize -m fks_pipelines.definitions --select recommendations/daily"
        f" --partition-range {first}...{last}"
    )


def generations_on(conn: psycopg.Connection, day: date) -> list[tuple[str, str, str | None, str | None]]:
    """Who generated each account's recommendation of ``day``: account, generator, model and the LLM's error."""
    return conn.execute(
        "SELECT account, generator, model, llm_error FROM recommendations.generations"
        " WHERE decision_date = %s ORDER BY account",
        (day,),
    ).fetchall()

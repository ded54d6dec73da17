"""The ``recommendations`` schema's store: what was generated (``generations``, ``daily``), its shadow ledger,
its track record, evaluation and ledger holes.

Decision time for day D is the end of D (D+1 00:00 UTC, :func:`decision_time`): every row of day D was decided
from what was known then. Gathering the inputs is the domain's (``lib/recommend/inputs.py``), through the stores
of the schemas it reads; this module stores and reads this schema's rows. The rows written are described by the
protocols below, which the domain's ``Generation`` satisfies, so the store imports no domain package.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from fks_pipelines.lib.db import marts
from fks_pipelines.lib.db.connect import one_row
from fks_pipelines.lib.db.portfolio import (
    PAPER_PREFIX,
    AccountState,
    Trade,
    account_markets,
    account_states_at,
    accounts_of_market,
    equity,
    held_trade_ids,
    holdings,
    imported_trades,
)
from fks_pipelines.lib.errors import DatabaseError, FksError

LONG_DUST = 0.001  # a target allocation at or below this holds nothing (the rules engine's DUST)


def decision_time(day: date) -> datetime:
    """The moment day ``day``'s recommendation is decided: the end of the UTC day (D+1 00:00 UTC)."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


class RecommendationRow(Protocol):
    """One symbol's sized recommendation as ``recommendations.daily`` holds it."""

    @property
    def symbol(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def target_allocation(self) -> float: ...
    @property
    def proposed_allocation(self) -> float: ...
    @property
    def current_allocation(self) -> float: ...
    @property
    def entry(self) -> float | None: ...
    @property
    def stop_loss(self) -> float | None: ...
    @property
    def take_profit(self) -> float | None: ...
    @property
    def horizon_days(self) -> int: ...
    @property
    def confidence(self) -> float: ...
    @property
    def rationale(self) -> str: ...
    @property
    def evidence(self) -> list[str]: ...
    @property
    def clamps(self) -> list: ...
    @property
    def reference_price(self) -> float: ...
    @property
    def strategy(self) -> str | None: ...
    @property
    def regime(self) -> str | None: ...


class GuardActRow(Protocol):
    """One act of a protection as ``recommendations.guards`` holds it (lib/portfolio/guards.Act is one)."""

    @property
    def guard(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def symbol(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def until(self) -> datetime | None: ...


class GenerationRow(Protocol):
    """One account's generation as ``recommendations.generations`` (the audit row) and ``daily`` hold it."""

    @property
    def account(self) -> str: ...
    @property
    def generator(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def messages(self) -> list[dict]: ...
    @property
    def recommendations(self) -> Sequence[RecommendationRow]: ...
    @property
    def raw_response(self) -> str | None: ...
    @property
    def llm_error(self) -> str | None: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def guard_acts(self) -> Sequence[GuardActRow]: ...
    @property
    def retrieved_ids(self) -> list[str]: ...


def store_generation(conn: psycopg.Connection, day: date, generation: GenerationRow, decided_at: datetime) -> None:
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
                " horizon_days, confidence, rationale, evidence, clamps, reference_price, strategy, regime)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                        r.strategy,
                        r.regime,
                    )
                    for r in generation.recommendations
                ],
            )
            cur.executemany(
                "INSERT INTO recommendations.guards (decision_date, account, guard, action, symbol, reason,"
                " threshold, value, until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                [
                    (
                        day,
                        generation.account,
                        a.guard,
                        a.action,
                        a.symbol or "",
                        a.reason,
                        a.threshold,
                        a.value,
                        a.until,
                    )
                    for a in generation.guard_acts
                ],
            )


def store_day(conn: psycopg.Connection, day: date, generations: Sequence[tuple[GenerationRow, datetime]]) -> None:
    """Replace ``day``'s recommendation for every account in ``generations`` (each with its decision time)
    all or nothing: one transaction, so a failure leaves the day's previous rows as they were."""
    with conn.transaction():
        for generation, decided_at in generations:
            store_generation(conn, day, generation, decided_at)


def long_decisions(
    conn: psycopg.Connection, accounts: Sequence[str], before: date, since: date | None = None
) -> list[tuple[date, str, str, str, datetime]]:
    """The decision days in [since, before) on which some of ``accounts`` was recommended to hold a symbol
    (target above ``dust``), once per (day, symbol), with the strategy and regime the decision followed and its
    decision time; rows without a strategy or regime (before migration 022, or cash) are left out."""
    return conn.execute(
        "SELECT r.decision_date, r.symbol, min(r.strategy), min(r.regime), min(g.decided_at)"
        " FROM recommendations.daily r JOIN recommendations.generations g USING (decision_date, account)"
        " WHERE r.account = ANY(%s) AND r.decision_date < %s AND r.decision_date >= %s"
        " AND r.target_allocation > %s AND r.strategy IS NOT NULL AND r.regime IS NOT NULL"
        " GROUP BY r.decision_date, r.symbol ORDER BY r.decision_date, r.symbol",
        (list(accounts), before, since or date.min, LONG_DUST),
    ).fetchall()


def _hit(action: str, close: float | None, reference: float, band: float) -> bool | None:
    """Buy and it rose, sell and it fell, hold and it moved less than ``band`` (None: the close is not known)."""
    if close is None:
        return None
    if action == "buy":
        return close > reference
    if action == "sell":
        return close < reference
    return abs(close / reference - 1) < band


def _track_record_rows(conn: psycopg.Connection) -> list[tuple]:
    """One scored row per stored recommendation of an account that exists: its returns 1 and 7 days after the
    decision (the marts' closes on the decision time's day and 6 days later; None until they exist) and its hits
    (a hold hits within 1 daily sigma of the 30-day volatility known the day before, or 3% without one; sqrt(7)
    of that over 7 days)."""
    markets = account_markets(conn)
    rows = [
        r
        for r in conn.execute(
            "SELECT r.decision_date, r.account, r.symbol, r.generator, r.action, r.target_allocation,"
            " r.reference_price, g.decided_at FROM recommendations.daily r"
            " JOIN recommendations.generations g USING (decision_date, account)"
        ).fetchall()
        if r[1] in markets
    ]
    week = timedelta(days=6)
    keys = [(markets[r[1]], r[2], r[7]) for r in rows]
    closes = marts.closes_on(conn, keys + [(m, s, t + week) for m, s, t in keys])
    sigmas = marts.volatility_30d_on(conn, [(m, s, t - timedelta(days=1)) for m, s, t in keys])
    out = []
    for (day, account, symbol, generator, action, target, reference, decided_at), key in zip(rows, keys, strict=True):
        close_1d, close_7d = closes.get(key), closes.get((key[0], symbol, decided_at + week))
        sigma = sigmas.get((key[0], symbol, decided_at - timedelta(days=1)))
        band = sigma / math.sqrt(365) if sigma is not None else 0.03
        out.append(
            (
                day,
                account,
                symbol,
                generator,
                action,
                target,
                None if close_1d is None else close_1d / reference - 1,
                None if close_7d is None else close_7d / reference - 1,
                _hit(action, close_1d, reference, band),
                _hit(action, close_7d, reference, band * math.sqrt(7)),
            )
        )
    return out


def score_track_record(conn: psycopg.Connection) -> int:
    """Score every stored recommendation against the closes 1 and 7 days after its decision (unknown ones
    stay NULL until the data exists); paper P&L = target allocation x equity at decision x return."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM recommendations.track_record t WHERE NOT EXISTS (SELECT 1 FROM recommendations.daily r"
            " WHERE (r.decision_date, r.account, r.symbol) = (t.decision_date, t.account, t.symbol))"
        )
        scored = _track_record_rows(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO recommendations.track_record (decision_date, account, symbol, generator, action,"
                " target_allocation, return_1d, return_7d, hit_1d, hit_7d, paper_pnl_1d, paper_pnl_7d)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL)"
                " ON CONFLICT (decision_date, account, symbol) DO UPDATE SET generator = EXCLUDED.generator,"
                " action = EXCLUDED.action, target_allocation = EXCLUDED.target_allocation,"
                " return_1d = EXCLUDED.return_1d, return_7d = EXCLUDED.return_7d, hit_1d = EXCLUDED.hit_1d,"
                " hit_7d = EXCLUDED.hit_7d, scored_at = now()",
                scored,
            )
        n = len(scored)
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
        " reference_price, entry, stop_loss, take_profit, horizon_days, confidence, rationale, evidence, clamps,"
        " strategy, regime FROM recommendations.daily WHERE decision_date = %s ORDER BY account, symbol",
        (day,),
    )
    if cursor.description is None:  # only a statement that returns no rows has none
        raise DatabaseError("the recommendations query returned no result set")
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def decided_recommendations(conn: psycopg.Connection, accounts: Sequence[str], decided_by: datetime) -> list[dict]:
    """The ``recommendations.daily`` rows of ``accounts`` decided at or before ``decided_by`` (their generation's
    ``decided_at``), each with that ``decided_at`` and the generation's model, oldest first (later rows are not
    read): what the knowledge layer's recommendation documents tell."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT r.decision_date, r.account, r.symbol, r.generator, g.model, g.decided_at, r.action,"
            " r.target_allocation, r.proposed_allocation, r.current_allocation, r.entry, r.stop_loss, r.take_profit,"
            " r.horizon_days, r.confidence, r.rationale, r.reference_price"
            " FROM recommendations.daily r JOIN recommendations.generations g USING (decision_date, account)"
            " WHERE r.account = ANY(%s) AND g.decided_at <= %s ORDER BY g.decided_at, r.account, r.symbol",
            (list(accounts), decided_by),
        ).fetchall()


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
        " FROM recommendations.generations g WHERE g.account = ANY(%s) GROUP BY g.account ORDER BY g.account",
        (accounts_of_market(conn, market, "paper"),),
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
        " array_position(ARRAY['recommendations', 'unprotected', 'cash', 'buy_and_hold', 'strategy_only'], baseline)",
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


def retrieved_ids(conn: psycopg.Connection, day: date) -> list[tuple[str, str]]:
    """(account, document id) of every document the day's decisions retrieved, in each generation's order."""
    return conn.execute(
        "SELECT g.account, r.id FROM recommendations.generations g"
        " CROSS JOIN LATERAL jsonb_array_elements_text(g.retrieved_ids) WITH ORDINALITY AS r (id, n)"
        " WHERE g.decision_date = %s ORDER BY g.account, r.n",
        (day,),
    ).fetchall()


# Shadow generations (migration 014): when an LLM decides, the rules engine decides too, from the same inputs,
# against its own ledger (recommendations.shadow_fills); the paper account follows only the LLM.
SHADOW_GENERATOR = "rules"


def _shadow_fills(conn: psycopg.Connection, account: str, generator: str, until: datetime | None) -> list[Trade]:
    return [
        Trade(*row)
        for row in conn.execute(
            "SELECT trade_id, symbol, side, quantity, price, fee, executed_at FROM recommendations.shadow_fills"
            " WHERE account = %s AND generator = %s AND (%s::timestamptz IS NULL OR executed_at <= %s)",
            (account, generator, until, until),
        ).fetchall()
    ]


def _shadow_ledger(conn: psycopg.Connection, account: str, generator: str, until: datetime | None) -> list[Trade]:
    """The imported trades (the portfolio's store) and the shadow fills up to ``until``, in time order."""
    trades = imported_trades(conn, account, until) + _shadow_fills(conn, account, generator, until)
    return sorted(trades, key=lambda t: (t.executed_at, t.trade_id))


def shadow_state(conn: psycopg.Connection, state: AccountState, at: datetime, generator: str) -> AccountState:
    """``state``'s account as the shadow ledger of ``generator`` holds it at ``at``: the same deposits and imported
    trades, the shadow fills instead of the paper fills, nothing after ``at``."""
    trades = [
        (t.symbol, t.side, float(t.quantity), float(t.price), float(t.fee))
        for t in _shadow_ledger(conn, state.account, generator, at)
    ]
    cash, held = holdings(state.net_deposits, trades)
    return replace(state, cash=cash, positions=held)


def shadow_trade_history(conn: psycopg.Connection, account: str, generator: str) -> list[Trade]:
    """The shadow ledger's trades in time order: the imported ones and the shadow fills (no paper fills)."""
    return _shadow_ledger(conn, account, generator, None)


def store_shadow_day(
    conn: psycopg.Connection, day: date, generations: Sequence[tuple[GenerationRow, datetime]]
) -> None:
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
    with conn.transaction():
        accounts = accounts_of_market(conn, market)
        conn.execute(
            "DELETE FROM recommendations.shadow_fills WHERE account = ANY(%s) AND executed_at > %s",
            (accounts, decision_time(first) - timedelta(days=1)),
        )
        if not keep_days:
            conn.execute(
                "DELETE FROM recommendations.shadow_daily WHERE account = ANY(%s) AND decision_date BETWEEN %s AND %s",
                (accounts, first, last),
            )


def shadow_windows(conn: psycopg.Connection, market: str) -> dict[tuple[str, str], int]:
    """(paper account, shadow generator) -> its shadow decision days, for the accounts of ``market``."""
    return {
        (a, g): int(n)
        for a, g, n in conn.execute(
            "SELECT s.account, s.generator, count(DISTINCT s.decision_date) FROM recommendations.shadow_daily s"
            " WHERE s.account = ANY(%s) GROUP BY 1, 2 ORDER BY 1, 2",
            (accounts_of_market(conn, market, "paper"),),
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
        paper = accounts_of_market(conn, market, "paper")
        held = {
            a: (f, set(r))
            for a, f, r in conn.execute(
                "SELECT account, incomplete_from, removed_fills FROM recommendations.ledger_holes"
                " WHERE account = ANY(%s)",
                (paper,),
            ).fetchall()
        }
        decided_after = {
            a
            for (a,) in conn.execute(
                "SELECT DISTINCT account FROM recommendations.generations WHERE account = ANY(%s)"
                " AND decision_date > %s",
                (paper, last),
            ).fetchall()
        }
        for account in sorted(set(held) | decided_after):
            kept = held[account][0] if account in held and held[account][0] < first else None
            starts = [d for d in (kept, last + timedelta(days=1) if account in decided_after else None) if d]
            if not starts:
                conn.execute("DELETE FROM recommendations.ledger_holes WHERE account = %s", (account,))
                continue
            ids = held.get(account, (None, set()))[1] | removed.get(account, set())
            present = held_trade_ids(conn, account, sorted(ids))
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
            " WHERE h.account = ANY(%s) ORDER BY h.account",
            (accounts_of_market(conn, market, "paper"),),
        ).fetchall()
    ]


def rerun_command(holes: list[LedgerHole]) -> str:
    """The command that fills every hole: one run of the daily recommendation over the days they span."""
    first, last = min(h.first for h in holes), max(h.last for h in holes)
    return (
        "dagster asset materialize -m fks_pipelines.definitions --select recommendations/daily"
        f" --partition-range {first}...{last}"
    )


def guard_acts(conn: psycopg.Connection, since: date | None = None, account: str | None = None) -> list[dict]:
    """The acts of the guards (recommendations.guards), newest first: on or after ``since``, of ``account``."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT decision_date, account, guard, action, nullif(symbol, '') AS symbol, reason, threshold, value,"
            " until FROM recommendations.guards WHERE (%(since)s::date IS NULL OR decision_date >= %(since)s)"
            " AND (%(account)s::text IS NULL OR lower(account) = lower(%(account)s))"
            " ORDER BY decision_date DESC, account, guard, symbol",
            {"since": since, "account": account},
        ).fetchall()


def position_levels(conn: psycopg.Connection, day: date) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """(stop_loss, take_profit) per (account, symbol) that a position filled from ``day``'s recommendation carries:
    those of the latest recommendation on or before ``day`` that sets either (lib/portfolio/stops.py)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (account, symbol) account, symbol, stop_loss, take_profit FROM recommendations.daily"
        " WHERE decision_date <= %s AND (stop_loss IS NOT NULL OR take_profit IS NOT NULL)"
        " ORDER BY account, symbol, decision_date DESC",
        (day,),
    ).fetchall()
    return {(a, s): (sl, tp) for a, s, sl, tp in rows}


def unprotected_targets(
    conn: psycopg.Connection, account: str, first: date, last: date
) -> list[tuple[date, str, str, float]]:
    """``account``'s recommendations over [first, last] as the generator sized them, before any protection acted:
    (day, symbol, action, target allocation); a row a guard changed (a clamp marked ``guard``) gets back the
    action and allocation it had before."""
    out = []
    for day, symbol, action, target, clamps in conn.execute(
        "SELECT decision_date, symbol, action, target_allocation, clamps FROM recommendations.daily"
        " WHERE account = %s AND decision_date BETWEEN %s AND %s ORDER BY decision_date, symbol",
        (account, first, last),
    ).fetchall():
        guarded = [c for c in clamps if c.get("guard")]
        if guarded:
            action, target = guarded[0].get("action_from", action), guarded[0]["from"]
        out.append((day, symbol, action, float(target)))
    return out


def last_decision_day(conn: psycopg.Connection) -> date | None:
    """The latest day with a recommendation, or None."""
    return one_row(conn.execute("SELECT max(decision_date) FROM recommendations.generations"))[0]


def generations_on(conn: psycopg.Connection, day: date) -> list[tuple[str, str, str | None, str | None]]:
    """Who generated each account's recommendation of ``day``: account, generator, model and the LLM's error."""
    return conn.execute(
        "SELECT account, generator, model, llm_error FROM recommendations.generations"
        " WHERE decision_date = %s ORDER BY account",
        (day,),
    ).fetchall()

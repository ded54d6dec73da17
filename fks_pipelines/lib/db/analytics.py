"""The ``analytics`` schema's store: every statement the analytics layer runs against its tables.

The tables are created by migration ``004_analytics.sql`` (beside this module, in ``migrations/``): walk-forward
runs (``backtest_runs``), each run's parameter grids (``backtest_results``) and per-symbol rolling choices
(``strategy_choices``, one row per decision; migration ``013`` makes them rolling), daily point-in-time indicator
and signal state (``signals``), and market regimes (``market_regimes``, ``regime_transitions``); migration ``012``
adds what the chosen strategy holds at each close (``strategy_state``). Times are UTC. A non-finite number (a
Sharpe ratio of a column that never trades, say) is stored as NULL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import dict_row

from fks_pipelines.lib.db.connect import one_row

# The metric columns of analytics.backtest_results, in table order: one per metric a backtest reports
# (lib/quant/backtest.METRICS holds the same names; tests/lib/db/test_analytics_store.py checks they agree).
RESULT_METRICS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_bars",
    "win_rate",
    "profit_factor",
    "expectancy",
    "trades",
    "avg_trade_duration_bars",
    "exposure",
    "fees_paid",
    "buy_and_hold_return",
)

# The indicator columns of analytics.signals, in table order.
INDICATORS = (
    "close",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_lower",
    "bb_middle",
    "bb_upper",
    "sma_20",
    "sma_50",
    "ema_20",
    "atr_14",
)


class StrategyChoice(NamedTuple):
    """One symbol's decision in a run: what to trade from ``decided_at`` (a strategy, or ``cash`` with params
    {}), its validation record (``oos_*``, known at ``decided_at``), how much of that record may be luck (``dsr``,
    ``pbo``) and its test-window record (``test_*``, known only at ``test_end``; None until then)."""

    symbol: str
    strategy: str
    params: dict[str, Any]
    objective: str
    oos_windows: int
    oos_total_return: float | None
    oos_sharpe: float | None
    oos_max_drawdown: float | None
    oos_trades: float | None
    buy_and_hold_return: float | None
    decided_at: datetime  # the decision time: nothing at or after it was used
    candidate: str | None = None
    in_sample_start: datetime | None = None
    validation_start: datetime | None = None
    n_trials: int | None = None
    dsr: float | None = None
    pbo: float | None = None
    configurations: int | None = None
    test_end: datetime | None = None
    test_total_return: float | None = None
    test_sharpe: float | None = None
    test_max_drawdown: float | None = None
    test_trades: float | None = None
    test_buy_and_hold_return: float | None = None


class Signal(NamedTuple):
    """A symbol's state at the end of UTC day ``bucket``, from bars up to ``as_of`` only."""

    bucket: datetime
    symbol: str
    as_of: datetime
    indicators: Mapping[str, float | None]  # INDICATORS -> value
    strategy_signals: Mapping[str, Any]  # {strategy: {"params": {...}, "entry": bool, "exit": bool}}


class StrategyStateRow(NamedTuple):
    """What the symbol's chosen strategy holds at the close of UTC day ``bucket`` (from bars up to ``as_of``)."""

    bucket: datetime
    symbol: str
    as_of: datetime
    strategy: str  # 'cash' when the choice is that no strategy beats cash
    params: Mapping[str, Any]
    choice_decided_at: datetime | None  # None: no choice yet (textbook defaults)
    position: str  # flat | long | short
    since: datetime | None
    entry_price: float | None
    unrealised_pnl: float | None


class RegimeDay(NamedTuple):
    symbol: str
    bucket: datetime
    regime: str
    next_day_probabilities: Mapping[str, float]  # regime -> probability of it tomorrow


class RegimeTransition(NamedTuple):
    symbol: str
    from_regime: str
    to_probabilities: Mapping[str, float]  # regime -> probability of moving there
    stationary_share: float


def finite(value: float | None) -> float | None:
    """``value`` as a float, or None (NULL) when it is missing, NaN or infinite."""
    return None if value is None or not math.isfinite(value) else float(value)


def record_run(
    conn: psycopg.Connection,
    run_id: str,
    *,
    fingerprint: str | None,
    code_version: str,
    bar_interval: str,
    data_start: datetime,
    data_end: datetime,
    objective: str,
    config: Mapping[str, Any],
) -> None:
    """Record (or touch) the run of one configuration: the same fingerprint is one run whose data range only
    grows; ``last_run_at`` says it is the latest configuration to have decided (readers prefer its choices). A
    run without a fingerprint (tests, analysts' one-off runs) is recorded the same way under its own id."""
    conn.execute(
        "INSERT INTO analytics.backtest_runs (run_id, fingerprint, code_version, bar_interval, data_start, data_end,"
        " objective, config, last_run_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp())"
        " ON CONFLICT (run_id) DO UPDATE SET data_start = least(backtest_runs.data_start, EXCLUDED.data_start),"
        " data_end = greatest(backtest_runs.data_end, EXCLUDED.data_end), last_run_at = clock_timestamp()",
        (run_id, fingerprint, code_version, bar_interval, data_start, data_end, objective, json.dumps(config)),
    )


_CHOICE_COLUMNS = (
    "strategy, params, objective, oos_windows, oos_total_return, oos_sharpe, oos_max_drawdown, oos_trades,"
    " buy_and_hold_return, decided_at, candidate, in_sample_start, validation_start, n_trials, dsr, pbo,"
    " configurations, test_end, test_total_return, test_sharpe, test_max_drawdown, test_trades,"
    " test_buy_and_hold_return"
)


def insert_choice(conn: psycopg.Connection, run_id: str, market: str, choice: StrategyChoice) -> None:
    """Write one decision; the same run deciding the same time again replaces it (a resumed backfill)."""
    updates = ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in _CHOICE_COLUMNS.split(",") if c.strip())
    conn.execute(
        f"INSERT INTO analytics.strategy_choices (run_id, market, symbol, {_CHOICE_COLUMNS})"
        f" VALUES ({', '.join(['%s'] * 26)})"
        f" ON CONFLICT (run_id, market, symbol, decided_at) DO UPDATE SET {updates}",
        (
            run_id,
            market,
            choice.symbol,
            choice.strategy,
            json.dumps(choice.params),
            choice.objective,
            choice.oos_windows,
            finite(choice.oos_total_return),
            finite(choice.oos_sharpe),
            finite(choice.oos_max_drawdown),
            choice.oos_trades,
            finite(choice.buy_and_hold_return),
            choice.decided_at,
            choice.candidate,
            choice.in_sample_start,
            choice.validation_start,
            choice.n_trials,
            finite(choice.dsr),
            finite(choice.pbo),
            choice.configurations,
            choice.test_end,
            finite(choice.test_total_return),
            finite(choice.test_sharpe),
            finite(choice.test_max_drawdown),
            finite(choice.test_trades),
            finite(choice.test_buy_and_hold_return),
        ),
    )


def insert_results(
    conn: psycopg.Connection,
    run_id: str,
    market: str,
    symbol: str,
    strategy: str,
    data_start: datetime,
    data_end: datetime,
    rows: Iterable[Mapping[str, Any]],
) -> None:
    """A strategy's grid for one symbol (each row has ``params`` and every metric in RESULT_METRICS), replacing
    the run's earlier grid of that symbol."""
    conn.execute(
        "DELETE FROM analytics.backtest_results WHERE run_id = %s AND market = %s AND symbol = %s",
        (run_id, market, symbol),
    )
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO analytics.backtest_results (run_id, market, symbol, strategy, params, sample, window_index,"
            f" data_start, data_end, {', '.join(RESULT_METRICS)})"
            f" VALUES (%s, %s, %s, %s, %s, 'full', NULL, %s, %s, {', '.join(['%s'] * len(RESULT_METRICS))})",
            [
                (
                    run_id,
                    market,
                    symbol,
                    strategy,
                    json.dumps(row["params"]),
                    data_start,
                    data_end,
                    *[finite(row[m]) for m in RESULT_METRICS],
                )
                for row in rows
            ],
        )


# The effective choice of each (market, symbol, decided_at): of the runs that decided that time, the one that
# materialized last (backtest_runs.last_run_at; run_id breaks an exact tie). Every reader of strategy choices
# (signals and strategy state, documents, recommendations, the demo) goes through this one ranking.
EFFECTIVE_CHOICES = (
    "SELECT DISTINCT ON (c.market, c.symbol, c.decided_at) c.*, r.last_run_at"
    " FROM analytics.strategy_choices c JOIN analytics.backtest_runs r USING (run_id)"
    " WHERE c.market = %(market)s AND c.symbol = ANY(%(symbols)s)"
    " ORDER BY c.market, c.symbol, c.decided_at, r.last_run_at DESC, c.run_id DESC"
)


def latest_choices(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], before: datetime
) -> dict[str, dict[str, Any]]:
    """Every symbol's latest effective choice decided strictly before ``before`` (point-in-time), as the row's
    columns by name; symbols without one are absent. The strategy may be ``cash`` (params {})."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT DISTINCT ON (symbol) * FROM ({EFFECTIVE_CHOICES}) e WHERE decided_at < %(before)s"
            " ORDER BY symbol, decided_at DESC",
            {"market": market, "symbols": list(symbols), "before": before},
        ).fetchall()
    return {row["symbol"]: row for row in rows}


def choices_decided(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], after: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The effective choices decided in (after, until], by symbol and time, with their run's data range."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT * FROM ({EFFECTIVE_CHOICES}) e WHERE decided_at > %(after)s AND decided_at <= %(until)s"
            " ORDER BY symbol, decided_at",
            {"market": market, "symbols": list(symbols), "after": after, "until": until},
        ).fetchall()


def latest_choice(conn: psycopg.Connection, market: str, symbol: str, before: datetime) -> tuple[str, dict] | None:
    """(strategy, params) of the symbol's latest choice decided strictly before ``before`` (point-in-time), or None.
    The strategy may be ``cash`` (params {})."""
    record = latest_choice_record(conn, market, symbol, before)
    return None if record is None else (record[0], record[1])


def latest_choice_record(
    conn: psycopg.Connection, market: str, symbol: str, before: datetime
) -> tuple[str, dict, datetime] | None:
    """(strategy, params, decided_at) of the symbol's latest choice decided strictly before ``before``, or None."""
    return latest_choice_records(conn, market, [symbol], before).get(symbol)


def latest_choice_records(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], before: datetime
) -> dict[str, tuple[str, dict, datetime]]:
    """symbol -> (strategy, params, decided_at) of :func:`latest_choices`, in one query."""
    return {
        s: (r["strategy"], r["params"], r["decided_at"])
        for s, r in latest_choices(conn, market, symbols, before).items()
    }


def run_decisions(
    conn: psycopg.Connection, run_id: str, market: str, symbol: str
) -> dict[datetime, tuple[str, dict, datetime | None, bool]]:
    """decided_at -> (strategy, params, test_end, test reported) of every decision the run holds for the symbol:
    what a later run of the same configuration need not decide again."""
    rows = conn.execute(
        "SELECT decided_at, strategy, params, test_end, test_total_return IS NOT NULL"
        " FROM analytics.strategy_choices WHERE run_id = %s AND market = %s AND symbol = %s",
        (run_id, market, symbol),
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def grid_of(conn: psycopg.Connection, run_id: str, market: str, symbol: str) -> tuple[str | None, bool]:
    """The candidate of the run's latest decision for the symbol, and whether the run holds a grid for it."""
    row = conn.execute(
        "SELECT candidate, EXISTS (SELECT 1 FROM analytics.backtest_results r WHERE r.run_id = c.run_id"
        " AND r.market = c.market AND r.symbol = c.symbol) FROM analytics.strategy_choices c"
        " WHERE run_id = %s AND market = %s AND symbol = %s ORDER BY decided_at DESC LIMIT 1",
        (run_id, market, symbol),
    ).fetchone()
    return (None, False) if row is None else (row[0], row[1])


def report_test(
    conn: psycopg.Connection, run_id: str, market: str, symbol: str, decided_at: datetime, test: Mapping[str, float]
) -> None:
    """Fill a decision's test-window record once that window has ended (a report: it never feeds a choice)."""
    conn.execute(
        "UPDATE analytics.strategy_choices SET test_total_return = %s, test_sharpe = %s, test_max_drawdown = %s,"
        " test_trades = %s, test_buy_and_hold_return = %s"
        " WHERE run_id = %s AND market = %s AND symbol = %s AND decided_at = %s",
        (
            finite(test["total_return"]),
            finite(test["sharpe"]),
            finite(test["max_drawdown"]),
            finite(test["trades"]),
            finite(test["buy_and_hold_return"]),
            run_id,
            market,
            symbol,
            decided_at,
        ),
    )


def run_choices(conn: psycopg.Connection, run_id: str, market: str, symbols: Sequence[str]) -> list[dict[str, Any]]:
    """Every decision of the run, by symbol and time (what the asset's metadata shows)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM analytics.strategy_choices WHERE run_id = %s AND market = %s AND symbol = ANY(%s)"
            " ORDER BY symbol, decided_at",
            (run_id, market, list(symbols)),
        ).fetchall()


def replace_strategy_state(
    conn: psycopg.Connection,
    market: str,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    rows: Iterable[StrategyStateRow],
) -> int:
    """Make the strategy state of ``symbols`` with start <= bucket < end exactly ``rows``, in one transaction."""
    batch = list(rows)
    with conn.transaction():
        conn.execute(
            "DELETE FROM analytics.strategy_state WHERE market = %s AND symbol = ANY(%s)"
            " AND bucket >= %s AND bucket < %s",
            (market, list(symbols), start, end),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO analytics.strategy_state (bucket, market, symbol, as_of, strategy, params,"
                " choice_decided_at, position, since, entry_price, unrealised_pnl)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        r.bucket,
                        market,
                        r.symbol,
                        r.as_of,
                        r.strategy,
                        json.dumps(r.params),
                        r.choice_decided_at,
                        r.position,
                        r.since,
                        finite(r.entry_price),
                        finite(r.unrealised_pnl),
                    )
                    for r in batch
                ],
            )
    return len(batch)


def strategy_positions(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], start: datetime, end: datetime
) -> list[tuple[datetime, str, str]]:
    """(bucket, symbol, position) of every stored close with start <= bucket < end, in time order."""
    return conn.execute(
        "SELECT bucket, symbol, position FROM analytics.strategy_state WHERE market = %s AND symbol = ANY(%s)"
        " AND bucket >= %s AND bucket < %s ORDER BY bucket, symbol",
        (market, list(symbols), start, end),
    ).fetchall()


def latest_strategy_state(conn: psycopg.Connection, market: str, symbol: str, at: datetime) -> list[dict[str, Any]]:
    """The symbol's strategy state at its newest close known at ``at`` (``as_of <= at``), as dicts; empty before
    the first stored close."""
    rows = conn.execute(
        "SELECT to_jsonb(s) FROM analytics.strategy_state s WHERE s.market = %s AND s.symbol = %s"
        " AND s.as_of = (SELECT max(t.as_of) FROM analytics.strategy_state t"
        " WHERE t.market = %s AND t.symbol = %s AND t.as_of <= %s) ORDER BY s.strategy",
        (market, symbol, market, symbol, at),
    ).fetchall()
    return [dict(r[0]) for r in rows]


def signals_by_day(
    conn: psycopg.Connection,
    market: str,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    known_before: datetime | None = None,
) -> dict[tuple[str, datetime], dict[str, Any]]:
    """{(symbol, bucket): row} of analytics.signals with start <= bucket < end (and, given ``known_before``, only
    rows whose ``as_of`` is before it), in symbol and day order: the day's close, indicators and the strategy
    signals that fired, as of the row's ``as_of``. Columns by name, in table order."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT market, symbol, bucket, as_of, {', '.join(INDICATORS)}, strategy_signals FROM analytics.signals"
            " WHERE market = %(market)s AND symbol = ANY(%(symbols)s) AND bucket >= %(start)s AND bucket < %(end)s"
            " AND (%(before)s::timestamptz IS NULL OR as_of < %(before)s) ORDER BY symbol, bucket",
            {"market": market, "symbols": list(symbols), "start": start, "end": end, "before": known_before},
        ).fetchall()
    return {(r["symbol"], r["bucket"]): r for r in rows}


def strategy_state_by_day(
    conn: psycopg.Connection,
    market: str,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    known_before: datetime | None = None,
) -> dict[tuple[str, datetime], dict[str, Any]]:
    """{(symbol, bucket): row} of analytics.strategy_state with start <= bucket < end (and, given ``known_before``,
    only rows whose ``as_of`` is before it): what the chosen strategy held at each close, columns by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT market, symbol, bucket, as_of, strategy, params, choice_decided_at, position, since, entry_price,"
            " unrealised_pnl FROM analytics.strategy_state"
            " WHERE market = %(market)s AND symbol = ANY(%(symbols)s) AND bucket >= %(start)s AND bucket < %(end)s"
            " AND (%(before)s::timestamptz IS NULL OR as_of < %(before)s) ORDER BY symbol, bucket",
            {"market": market, "symbols": list(symbols), "start": start, "end": end, "before": known_before},
        ).fetchall()
    return {(r["symbol"], r["bucket"]): r for r in rows}


def regimes_by_day(
    conn: psycopg.Connection, market: str, symbols: Sequence[str], start: datetime, end: datetime
) -> dict[tuple[str, datetime], dict[str, Any]]:
    """{(symbol, bucket): {"regime", "next_day_probabilities"}} from analytics.market_regimes, start <= bucket < end."""
    rows = conn.execute(
        "SELECT symbol, bucket, regime, next_day_probabilities FROM analytics.market_regimes"
        " WHERE market = %s AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s",
        (market, list(symbols), start, end),
    ).fetchall()
    return {(s, b): {"regime": r, "next_day_probabilities": p} for s, b, r, p in rows}


def replace_signals(
    conn: psycopg.Connection,
    market: str,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    rows: Iterable[Signal],
) -> int:
    """Make the signals of ``symbols`` with start <= bucket < end exactly ``rows``, in one transaction (other
    symbols and days are left alone). Returns the number of rows written."""
    batch = list(rows)
    outside = [(r.symbol, r.bucket) for r in batch if r.symbol not in symbols or not start <= r.bucket < end]
    if outside:
        raise ValueError(f"signals outside the window [{start}, {end}) or symbols {list(symbols)}: {outside[:3]}")
    with conn.transaction():
        conn.execute(
            "DELETE FROM analytics.signals WHERE market = %s AND symbol = ANY(%s) AND bucket >= %s AND bucket < %s",
            (market, list(symbols), start, end),
        )
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO analytics.signals"
                f" (bucket, market, symbol, as_of, {', '.join(INDICATORS)}, strategy_signals)"
                f" VALUES (%s, %s, %s, %s, {', '.join(['%s'] * len(INDICATORS))}, %s)",
                [
                    (
                        r.bucket,
                        market,
                        r.symbol,
                        r.as_of,
                        *[finite(r.indicators[k]) for k in INDICATORS],
                        json.dumps(r.strategy_signals),
                    )
                    for r in batch
                ],
            )
    return len(batch)


def replace_regimes(
    conn: psycopg.Connection, market: str, days: Iterable[RegimeDay], transitions: Iterable[RegimeTransition]
) -> None:
    """Make the market's regimes and transition matrices exactly these, in one transaction (the model is
    re-estimated over all history each time, so every earlier row of the market goes)."""
    with conn.transaction():
        conn.execute("DELETE FROM analytics.market_regimes WHERE market = %s", (market,))
        conn.execute("DELETE FROM analytics.regime_transitions WHERE market = %s", (market,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO analytics.market_regimes (market, symbol, bucket, regime, next_day_probabilities)"
                " VALUES (%s, %s, %s, %s, %s)",
                [(market, d.symbol, d.bucket, d.regime, json.dumps(d.next_day_probabilities)) for d in days],
            )
            cur.executemany(
                "INSERT INTO analytics.regime_transitions"
                " (market, symbol, from_regime, to_probabilities, stationary_share)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    (market, t.symbol, t.from_regime, json.dumps(t.to_probabilities), t.stationary_share)
                    for t in transitions
                ],
            )


def run_first_input(conn: psycopg.Connection, run_id: str) -> datetime | None:
    """The earliest in-sample start of the run's decisions (the start of the data its choices read)."""
    return one_row(
        conn.execute("SELECT min(in_sample_start) FROM analytics.strategy_choices WHERE run_id = %s", (run_id,))
    )[0]


def choice_summary(conn: psycopg.Connection, market: str, symbols: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per symbol, the effective weekly choices over the whole history: how many, how often cash was chosen, the
    mean and median Deflated Sharpe Ratio and PBO of the decisions, and the choices' test windows chained (each
    week's test return compounded; cash earns 0) against buy and hold over the same test windows."""
    if symbols is None:
        symbols = [r[0] for r in conn.execute("SELECT DISTINCT symbol FROM analytics.strategy_choices").fetchall()]
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT symbol, count(*)::int AS decisions, min(decided_at) AS first_decision,"
            " max(decided_at) AS last_decision, avg((strategy = 'cash')::int)::float8 AS cash_share,"
            " avg(dsr) FILTER (WHERE dsr <> 'NaN')::float8 AS dsr_mean,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY dsr) FILTER (WHERE dsr <> 'NaN')::float8 AS dsr_median,"
            " avg(pbo) FILTER (WHERE pbo <> 'NaN')::float8 AS pbo_mean,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY pbo) FILTER (WHERE pbo <> 'NaN')::float8 AS pbo_median,"
            " count(test_total_return)::int AS tested,"
            " exp(sum(ln(1 + test_total_return)))::float8 - 1 AS test_chained,"
            " exp(sum(ln(1 + test_buy_and_hold_return)) FILTER (WHERE test_total_return IS NOT NULL))::float8 - 1"
            " AS buy_and_hold_chained"
            f" FROM ({EFFECTIVE_CHOICES}) e GROUP BY symbol ORDER BY symbol",
            {"market": market, "symbols": list(symbols)},
        ).fetchall()


def last_run_choices(conn: psycopg.Connection) -> list[tuple]:
    """Every choice of the most recent backtest run, by symbol and decision time: symbol, decided_at, strategy,
    params, validation return, DSR, PBO, test return and the test's buy-and-hold return (the demo's summary)."""
    return conn.execute(
        "SELECT symbol, decided_at, strategy, params, oos_total_return, dsr, pbo, test_total_return,"
        " test_buy_and_hold_return FROM analytics.strategy_choices"
        " WHERE run_id = (SELECT run_id FROM analytics.backtest_runs ORDER BY last_run_at DESC LIMIT 1)"
        " ORDER BY symbol, decided_at"
    ).fetchall()


def latest_regimes(conn: psycopg.Connection) -> dict[str, str]:
    """Each symbol's regime on its latest bar."""
    rows = conn.execute(
        "SELECT DISTINCT ON (symbol) symbol, regime FROM analytics.market_regimes ORDER BY symbol, bucket DESC"
    ).fetchall()
    return dict(rows)

"""Why an account's recommendation of a day is what it is, in text and pictures (lib/recommend/pictures.py): where
the account stands against its limits, what the regime model expects next, the path from the tier's cap to each
size, and the latest monthly profit split. Assembled from the stores, point-in-time: everything as of the day's
decision (equity and fills up to it, the regime's next-day odds estimated then; the regime model's full transition
matrix is re-estimated over all history, so it is left out). Serves `fks explain`, the daily recommendation's
asset page and its Discord post."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg

from fks_pipelines.lib.db import analytics, portfolio, recommendations
from fks_pipelines.lib.db.marts import daily_bars
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.portfolio.guards import History, Protections, evaluate
from fks_pipelines.lib.portfolio.sizing import limits
from fks_pipelines.lib.recommend import pictures as pic
from fks_pipelines.lib.recommend.feedback import FeedbackBook, records_at
from fks_pipelines.lib.recommend.guarding import guarding_for, history_of

HISTORY_DAYS = 120  # the account picture's span


@dataclass
class Explanation:
    account: str
    day: date
    text: str
    pictures: dict[str, bytes] = field(default_factory=dict)  # name -> PNG: account, size, regime_<SYMBOL>, split


def explain(
    conn: psycopg.Connection,
    account: str,
    day: date,
    market: str,
    symbols: list[str],
    *,
    draw: bool = True,
    book: FeedbackBook | None = None,
) -> Explanation:
    """``account``'s recommendation of ``day`` explained (a one-line BadInputError when the account or its
    recommendation that day does not exist); ``book``: the day's records (feedback.records_at), read here if not
    given."""
    at = recommendations.decision_time(day)
    state = next((s for s in portfolio.account_states(conn, at) if s.account.lower() == account.lower()), None)
    if state is None:
        raise BadInputError(f"no account {account!r} open on {day} (fks portfolio import FILE)")
    rows = [r for r in recommendations.latest_rows(conn, day) if r["account"] == state.account]
    if not rows:
        raise BadInputError(f"{state.account} has no recommendation on {day} (materialize recommendations/daily)")
    days_ = _account_days(conn, state.account, day, market, symbols)
    history = history_of(
        zip([recommendations.decision_time(d) for d in days_.days], days_.equity, strict=True),
        portfolio.exits_between(conn, at - timedelta(days=400), at).get(state.account, []),
        portfolio.guard_settings(conn).get(state.account, (None, None, state.net_deposits))[2],  # the opening deposit
        at,
    )
    equity = days_.equity[-1] if len(days_.equity) else state.cash
    guarding = guarding_for(equity, state.protections, state.prop_firm, history, account=state.account)
    acts = [a for a in recommendations.guard_acts(conn, since=day, account=state.account) if a["decision_date"] == day]
    limit_rows = _limits(guarding.protections, history, at) + _acted(acts)
    regimes = [
        pic.RegimeView(s, v["regime"], dict(v["next_day_probabilities"]), (), day)
        for (s, _), v in sorted(analytics.regimes_by_day(conn, market, symbols, at - timedelta(days=1), at).items())
    ]
    lim = limits(max(equity, 0.0), state.kind)
    sizes = [
        pic.size_path(
            r["symbol"],
            tier=lim.tier.name,
            tier_cap=lim.max_allocation,
            confidence=r["confidence"],
            proposed=r["proposed_allocation"],
            clamps=r["clamps"],
        )
        for r in rows
    ]
    splits = [pic.ProfitSplit(*row) for row in portfolio.latest_profit_splits(conn, day)]
    text = pic.explain_text(
        state.account,
        day,
        days=days_,
        limits=limit_rows,
        regimes=regimes,
        sizes=sizes,
        splits=splits,
        records=record_lines(book or records_at(conn, market, day), rows),
    )
    out = Explanation(state.account, day, text)
    if draw:
        out.pictures["account"] = pic.account_picture(state.account, days_, limit_rows)
        if sizes:
            out.pictures["size"] = _sizes_picture(sizes)
        for v in regimes:
            out.pictures[f"regime_{v.symbol}"] = pic.regime_picture(v)
        if splits:
            out.pictures["split"] = pic.profit_split_picture(splits)
    return out


def record_lines(book: FeedbackBook, rows: list[dict]) -> list[tuple[str, str]]:
    """Per symbol, the record its decision saw (feedback.py): the known outcomes of what it followed, and the
    latest of them with when it became known."""
    out = []
    for r in rows:
        record = book.record(r.get("strategy"), r.get("regime"))
        if record is not None:
            last = "; ".join(f"{o.symbol} {o.day} {o.return_7d:+.2%} (known {o.as_of:%Y-%m-%d})" for o in record.last)
            out.append((r["symbol"], record.summary() + (f"; last: {last}" if last else "")))
    return out


def _sizes_picture(sizes: list[pic.SizePath]) -> bytes:
    """The waterfall of the symbol whose size moved most (the one a trader asks about)."""
    return pic.size_waterfall_picture(max(sizes, key=lambda s: abs(s.start - s.final) + len(s.steps)))


def _account_days(
    conn: psycopg.Connection, account: str, day: date, market: str, symbols: list[str]
) -> pic.AccountDays:
    first = day - timedelta(days=HISTORY_DAYS - 1)
    days = [first + timedelta(days=i) for i in range(HISTORY_DAYS)]
    states = portfolio.account_states_at(conn, [recommendations.decision_time(d) for d in days])
    bars = daily_bars(
        conn,
        market,
        symbols,
        recommendations.decision_time(first) - timedelta(days=1),
        recommendations.decision_time(day),
    )
    close = {(r["symbol"], r["bucket"].date()): r["close"] for r in bars.iter_rows(named=True)}
    kept: list[date] = []
    equity: list[float] = []
    cash: list[float] = []
    values: dict[str, list[float]] = {s: [] for s in symbols}
    for d in days:
        mine = [s for s in states[recommendations.decision_time(d)] if s.account == account]
        if not mine:
            continue  # not open yet
        s = mine[0]
        marks = {sym: s.positions.get(sym, 0.0) * close.get((sym, d), 0.0) for sym in symbols}
        kept.append(d)
        cash.append(s.cash)
        equity.append(s.cash + sum(marks.values()))
        for sym in symbols:
            values[sym].append(marks[sym])
    return pic.AccountDays(kept, equity, cash, {s: v for s, v in values.items() if any(v)})


def _limits(p: Protections, h: History, at) -> list[pic.GuardLimit]:
    """Each configured account-wide limit with the account's value against it on the decision (acted or not)."""
    out = []
    known = [eq for t, eq in h.equity if t <= at]
    if p.max_drawdown is not None and known:
        window = [eq for t, eq in h.equity if at - timedelta(days=p.max_drawdown_lookback_days) <= t <= at]
        dd = 1 - known[-1] / max(window) if max(window) > 0 else 0.0
        out.append(pic.GuardLimit("max_drawdown", p.max_drawdown, dd))
    if p.daily_loss_limit is not None and len(known) >= 2:
        loss = 1 - known[-1] / known[-2] if known[-2] > 0 else 0.0
        out.append(pic.GuardLimit("daily_loss_limit", p.daily_loss_limit, loss))
    if p.stoploss_count:
        span = timedelta(days=p.stoploss_window_days)
        stops = [f for f in h.exits if f.reason == "stop_loss" and at - span <= f.at < at]
        out.append(pic.GuardLimit("stoploss_guard", p.stoploss_count, len(stops), unit="count"))
    acted = {a.guard for a in evaluate(p, None, h, at).acts}
    return [pic.GuardLimit(g.guard, g.threshold, g.value, g.guard in acted, g.unit) for g in out]


def _acted(acts: list[dict]) -> list[pic.GuardLimit]:
    """The acts recorded on the decision (recommendations.guards), as acted limits."""
    return [
        pic.GuardLimit(
            a["guard"],
            a["threshold"],
            a["value"],
            True,
            pic.GUARD_UNITS.get(a["guard"], "share"),
            a["symbol"],
            a["action"],
            a["reason"],
            a["until"],
        )
        for a in acts
    ]


def explain_day(conn: psycopg.Connection, day: date, market: str, symbols: list[str]) -> list[Explanation]:
    """Every account's recommendation of ``day`` explained (the asset page and the Discord post show these)."""
    accounts = sorted({r["account"] for r in recommendations.latest_rows(conn, day)})
    book = records_at(conn, market, day)  # the same records for every account of the day
    return [explain(conn, account, day, market, symbols, book=book) for account in accounts]

"""Documents: what the platform knows, as text a model can embed and a person can read.

A document has a ``key`` (what it is about: one per kind, market, symbol and day or run), an ``id`` that is
the sha256 of its content (so an unchanged document is recognised and never embedded twice, and a changed
one gets a new id), and ``as_of``: the moment its information existed. Point-in-time searches never return a
document whose ``as_of`` is after the time they ask about.

Text rules (bad input): text must be a ``str`` (or UTF-8 ``bytes``), non-blank, without NUL characters or
lone surrogates, and at most ``MAX_TEXT_CHARS`` characters; anything else is rejected with a
:class:`BadInputError` naming the document. Long texts within the limit are chunked (see chunking.py).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.portfolio.ledger import PAPER_PREFIX, Trade
from fks_pipelines.lib.portfolio.stops import STOP_LOSS, TAKE_PROFIT, reason_of

MAX_TEXT_CHARS = 200_000  # ~50k tokens: a document longer than this is a bug upstream, not knowledge

# The daily window's kinds: what the `documents` asset rebuilds per day (its replace scope).
KINDS = ("market_summary", "signal_event", "strategy_summary")
# The record's kinds: what the accounts did and what came of it (lib/rag/record.py, the `record_documents` asset).
# Kept apart from KINDS so that a day's rebuild never deletes them.
RECORD_KINDS = ("trade", "position", "recommendation")
ALL_KINDS = KINDS + RECORD_KINDS


def clean_text(text: str | bytes, where: str) -> str:
    """The text as stored, or a BadInputError saying what is wrong with it and where."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadInputError(
                f"text is not UTF-8 (byte {e.start}: {text[e.start : e.start + 4]!r})", where=where
            ) from None
    if not isinstance(text, str):
        raise BadInputError(f"text must be a string, not {type(text).__name__}", where=where)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadInputError(
            f"text has an unpaired surrogate at character {e.start} (decoded from bad bytes?)", where=where
        ) from None
    if "\x00" in text:
        raise BadInputError(
            f"text contains a NUL character at {text.index(chr(0))} (PostgreSQL text cannot hold it)", where=where
        )
    if not text.strip():
        raise BadInputError("text is empty", where=where)
    if len(text) > MAX_TEXT_CHARS:
        raise BadInputError(f"text has {len(text):,} characters, more than the {MAX_TEXT_CHARS:,} allowed", where=where)
    return text


@dataclass(frozen=True)
class Document:
    key: str
    kind: str
    as_of: datetime
    text: str
    market: str | None = None
    symbol: str | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.as_of.tzinfo is None:
            raise BadInputError("as_of must be timezone-aware", where=self.key)
        object.__setattr__(self, "text", clean_text(self.text, self.key))
        object.__setattr__(self, "metadata", _jsonable(self.metadata))

    @property
    def id(self) -> str:
        """sha256 of everything the document says: equal content, equal id."""
        payload = json.dumps(
            [
                self.kind,
                self.key,
                self.market,
                self.symbol,
                self.as_of.astimezone(UTC).isoformat(),
                self.text,
                self.metadata,
            ],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def _jsonable(value):
    """Metadata as plain JSON: NaN/inf become null (JSON has neither), datetimes ISO strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def _pct(x: float | None, signed: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:+.2%}" if signed else f"{x:.2%}"


def _num(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:,.{digits}f}"


def _day_end(day: datetime) -> datetime:
    return day + timedelta(days=1)


# Plain-language descriptors: the words a question uses ("a sharp drop", "RSI oversold"), computed from the
# numbers so that full-text search can find a day by what happened (a sentence embedding cannot compare
# numbers). Thresholds are on the day's simple return (close on the previous close), its range (high - low) on
# the open, the last hourly RSI(14) of the day, and the day's regime (analytics.market_regimes); they are
# documented in docs/architecture.md (knowledge layer) and the benchmark's relevance labels use the same numbers
# read from the marts and analytics tables.
SHARP_MOVE = 0.04  # |return| >= 4%: "sharp drop" / "strong rally"
WIDE_RANGE = 0.06  # range >= 6% of the open: "wide range"
QUIET_RETURN = 0.01  # |return| < 1% ...
QUIET_RANGE = 0.03  # ... and range < 3% of the open: "quiet day"
RSI_OVERSOLD = 30.0  # RSI(14) < 30: "RSI oversold"
RSI_OVERBOUGHT = 70.0  # RSI(14) > 70: "RSI overbought"


def descriptors(
    simple_return: float | None, range_pct: float | None, rsi: float | None, regime: str | None
) -> list[str]:
    """The day's plain-language descriptors, in a fixed order (empty when no number qualifies)."""
    finite = lambda x: x is not None and math.isfinite(x)  # noqa: E731
    out = []
    if finite(simple_return) and simple_return <= -SHARP_MOVE:  # type: ignore[operator]
        out.append("sharp drop")
    if finite(simple_return) and simple_return >= SHARP_MOVE:  # type: ignore[operator]
        out.append("strong rally")
    if finite(range_pct) and range_pct >= WIDE_RANGE:  # type: ignore[operator]
        out.append("wide range")
    if (
        finite(simple_return)
        and finite(range_pct)
        and abs(simple_return) < QUIET_RETURN  # type: ignore[arg-type]
        and range_pct < QUIET_RANGE  # type: ignore[operator]
    ):
        out.append("quiet day")
    if finite(rsi) and rsi < RSI_OVERSOLD:  # type: ignore[operator]
        out.append("RSI oversold")
    if finite(rsi) and rsi > RSI_OVERBOUGHT:  # type: ignore[operator]
        out.append("RSI overbought")
    if regime and regime.endswith("high_vol"):
        out.append("high-volatility regime")
    elif regime and regime.endswith("low_vol"):
        out.append("low-volatility regime")
    return out


def market_summary(day: dict, regime: dict | None, indicators: dict | None, jump_sigmas: float = 3.0) -> Document:
    """One symbol's day: price move, range, volume, volatility, regime, indicator state, and notable events
    (a jump: a return beyond ``jump_sigmas`` daily standard deviations of the last 30 days; a gap: minutes
    missing from the day). ``as_of`` is the end of the day: nothing in it is known before."""
    market, symbol, bucket = day["market"], day["symbol"], day["bucket"]
    ret, vol30, vol7 = day.get("simple_return"), day.get("volatility_30d"), day.get("volatility_7d")
    range_pct = (day["high"] - day["low"]) / day["open"] if day["open"] else None
    lines = [
        f"{symbol} ({market}) on {bucket:%Y-%m-%d}: opened {_num(day['open'])}, closed {_num(day['close'])}"
        f" ({_pct(ret)} on the previous close), range {_num(day['low'])} to {_num(day['high'])}"
        f" ({_pct(range_pct, signed=False)} of the open), volume {_num(day['volume'], 0)}.",
        f"Annualised volatility of daily returns: {_pct(vol7, signed=False)} over 7 days,"
        f" {_pct(vol30, signed=False)} over 30 days.",
    ]
    events = []
    sigma = vol30 / math.sqrt(365) if vol30 and math.isfinite(vol30) else None
    if ret is not None and sigma and abs(math.log1p(ret)) > jump_sigmas * sigma:
        events.append(
            f"a {'jump up' if ret > 0 else 'drop'} of {_pct(ret)}, "
            f"{abs(math.log1p(ret)) / sigma:.1f} standard deviations of the last 30 days"
        )
    expected = day.get("expected_bars")
    if expected and day.get("bar_count") is not None and day["bar_count"] < expected:
        unit = {1440: "one-minute", 24: "hourly"}.get(expected, "source")
        events.append(f"a data gap: {day['bar_count']:,} of {expected:,} {unit} bars")
    if regime:
        probabilities = ", ".join(
            f"{k} {v:.0%}" for k, v in sorted(regime["next_day_probabilities"].items(), key=lambda kv: -kv[1])[:3]
        )
        lines.append(
            f"Market regime: {regime['regime'].replace('_', ' ')}; next-day regime probabilities: {probabilities}."
        )
    if indicators:
        rsi, hist = indicators.get("rsi_14"), indicators.get("macd_hist")
        close, sma50, lower, upper = (indicators.get(k) for k in ("close", "sma_50", "bb_lower", "bb_upper"))
        state = [
            f"RSI(14) {_num(rsi, 1)}"
            + (" (overbought)" if rsi and rsi > 70 else " (oversold)" if rsi and rsi < 30 else "")
        ]
        if hist is not None and math.isfinite(hist):
            state.append(f"MACD histogram {'positive' if hist > 0 else 'negative'} ({_num(hist)})")
        if close and sma50:
            state.append(f"close {'above' if close > sma50 else 'below'} its 50-hour average")
        if close and upper and close > upper:
            state.append("close above the upper Bollinger band")
        elif close and lower and close < lower:
            state.append("close below the lower Bollinger band")
        lines.append("Hourly indicators at the close: " + ", ".join(state) + ".")
    lines.append(("Notable: " + "; ".join(events) + ".") if events else "Nothing notable: no jump, no data gap.")
    words = descriptors(ret, range_pct, (indicators or {}).get("rsi_14"), regime["regime"] if regime else None)
    if words:
        lines.append("In words: " + ", ".join(words) + ".")
    return Document(
        key=f"market_summary/{market}/{symbol}/{bucket:%Y-%m-%d}",
        kind="market_summary",
        as_of=_day_end(bucket),
        text="\n".join(lines),
        market=market,
        symbol=symbol,
        metadata={
            "day": bucket.date().isoformat(),
            "events": events,
            "descriptors": words,
            **{k: v for k, v in day.items() if k not in ("market", "symbol", "bucket")},
            "regime": regime["regime"] if regime else None,
            "indicators": indicators or {},
        },
    )


def signal_events(signals: dict) -> list[Document]:
    """A document for each strategy whose entry or exit fired on the day's last hourly bar."""
    out = []
    market, symbol, bucket = signals["market"], signals["symbol"], signals["bucket"]
    for strategy, state in sorted(signals["strategy_signals"].items()):
        for side in ("entry", "exit"):
            if not state.get(side):
                continue
            params = ", ".join(f"{k} {v}" for k, v in state.get("params", {}).items())
            text = (
                f"{strategy} ({params}) signalled {side.upper()} for {symbol} ({market}) on the hourly bar of "
                f"{signals['as_of']:%Y-%m-%d %H:%M} UTC, close {_num(signals.get('close'))}: "
                + (
                    "a long position would be opened at the next open."
                    if side == "entry"
                    else "a long position would be closed at the next open."
                )
            )
            out.append(
                Document(
                    key=f"signal_event/{market}/{symbol}/{bucket:%Y-%m-%d}/{strategy}/{side}",
                    kind="signal_event",
                    as_of=_day_end(bucket),
                    text=text,
                    market=market,
                    symbol=symbol,
                    metadata={
                        "strategy": strategy,
                        "side": side,
                        "params": state.get("params", {}),
                        "bar": signals["as_of"],
                    },
                )
            )
    return out


def strategy_summary(choice: dict) -> Document:
    """One weekly decision for one symbol (an effective row of analytics.strategy_choices): what was chosen at
    ``decided_at``, from which windows, and its validation record; as of the decision (its test-window record is
    not known then and is left out)."""
    market, symbol = choice["market"], choice["symbol"]
    params = ", ".join(f"{k} {v}" for k, v in choice["params"].items())
    chose = f"{choice['strategy']} ({params})" if params else choice["strategy"]
    start = choice.get("in_sample_start") or choice["decided_at"]
    text = (
        f"Walk-forward validation for {symbol} ({market}) decided at {choice['decided_at']:%Y-%m-%d %H:%M} UTC on "
        f"hourly bars {start:%Y-%m-%d} to {choice['decided_at']:%Y-%m-%d}, objective {choice['objective']}: chose "
        f"{chose}. On the validation window the candidate {choice.get('candidate') or choice['strategy']} returned "
        f"{_pct(choice['oos_total_return'])}, Sharpe {_num(choice['oos_sharpe'])}, max drawdown "
        f"{_pct(choice['oos_max_drawdown'])}, {_num(choice['oos_trades'], 0)} trades; buy and hold "
        f"{_pct(choice['buy_and_hold_return'])} over the same period."
    )
    beat = (choice["oos_total_return"] or 0) > (choice["buy_and_hold_return"] or 0)
    text += " The candidate beat buy and hold." if beat else " The candidate did not beat buy and hold."
    known = ("strategy", "params", "objective", "candidate", "oos_total_return", "oos_sharpe", "dsr", "pbo", "run_id")
    return Document(
        key=f"strategy_summary/{market}/{symbol}/{choice['decided_at'].astimezone(UTC):%Y-%m-%dT%H:%M}",
        kind="strategy_summary",
        as_of=choice["decided_at"],
        text=text,
        market=market,
        symbol=symbol,
        metadata={k: choice.get(k) for k in known} | {"decided_at": choice["decided_at"]},
    )


# The record: trades, closed positions and past recommendations with their outcomes. Each is known only once its
# outcome is: a trade at its execution, a position when it closes, a recommendation when its 7-day outcome closes.

REBALANCE = "rebalance"  # a paper fill of the day's recommendation at the next open (lib/portfolio/paper.py)
IMPORTED = "imported"  # a trade from the account's ledger file (a real account's own trade)
OUTCOME_DAYS = 7  # a recommendation's document waits for its 7-day outcome
RATIONALE_CHARS = 280  # a recommendation's rationale, shortened to this many characters


def trade_reason(trade_id: str) -> str:
    """Why a trade happened: stop_loss / take_profit (a paper stop fill), rebalance (a paper fill of a day's
    recommendation) or imported (the account's own trade)."""
    if not trade_id.startswith(PAPER_PREFIX):
        return IMPORTED
    return reason_of(trade_id) or REBALANCE


def _paper_day(trade_id: str) -> str | None:
    """The decision day a paper fill's id names (paper-<YYYY-MM-DD>-...), or None."""
    day = trade_id[len(PAPER_PREFIX) : len(PAPER_PREFIX) + 10] if trade_id.startswith(PAPER_PREFIX) else ""
    try:
        return date.fromisoformat(day).isoformat()
    except ValueError:
        return None


_REASON_WORDS = {
    STOP_LOSS: "a stop-loss exit: the position's stop was touched",
    TAKE_PROFIT: "a take-profit exit: the position's take-profit was touched",
    REBALANCE: "a paper rebalance to the recommendation's target at the next open",
    IMPORTED: "a trade of the account's own ledger",
}


def trade(account: str, market: str, t: Trade) -> Document:
    """One trade of an account (portfolio.trades): side, price, fee rate and why it happened (see
    :func:`trade_reason`). ``as_of`` is its execution time: nothing in it is known before.

    No amount: neither the quantity nor the notional nor the fee in the quote currency. ``knowledge.documents``
    is readable by the ``analyst`` role, which may never read the ledger or an amount of an account's money
    (lib/db/roles.py, docs/security.md); the fee is given as a share of the notional."""
    reason = trade_reason(t.trade_id)
    price = float(t.price)
    notional = t.quantity * t.price
    fee_rate = float(t.fee / notional) if notional else float("nan")
    decided = _paper_day(t.trade_id)
    text = (
        f"Account {account} {'bought' if t.side == 'buy' else 'sold'} {t.symbol} ({market}) at {_num(price)} on "
        f"{t.executed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC, fee {_pct(fee_rate, signed=False)} of the notional: "
        f"{_REASON_WORDS[reason]}" + (f" (recommendation of {decided})." if decided and reason == REBALANCE else ".")
    )
    return Document(
        key=f"trade/{market}/{account}/{t.trade_id}",
        kind="trade",
        as_of=t.executed_at,
        text=text,
        market=market,
        symbol=t.symbol,
        metadata={
            "account": account,
            "trade_id": t.trade_id,
            "side": t.side,
            "price": price,
            "fee_rate": fee_rate,
            "reason": reason,
            "decision_day": decided,
            "executed_at": t.executed_at,
        },
    )


@dataclass(frozen=True)
class Episode:
    """One position of an account in one symbol, from flat to flat, by its trades in time order."""

    account: str
    symbol: str
    trades: tuple[Trade, ...]

    @property
    def closed(self) -> bool:
        held = sum((t.quantity if t.side == "buy" else -t.quantity for t in self.trades), Decimal(0))
        return held == 0 and any(t.side == "sell" for t in self.trades)


def position_episodes(account: str, trades: list[Trade]) -> list[Episode]:
    """The account's positions, one per symbol from its first buy after being flat to the trade that makes it
    flat again (quantities are exact decimals); the last one of a symbol may still be open. ``trades`` in time
    order."""
    held: dict[str, Decimal] = {}
    open_trades: dict[str, list[Trade]] = {}
    out: list[Episode] = []
    for t in trades:
        open_trades.setdefault(t.symbol, []).append(t)
        held[t.symbol] = held.get(t.symbol, Decimal(0)) + (t.quantity if t.side == "buy" else -t.quantity)
        if held[t.symbol] <= 0:
            out.append(Episode(account, t.symbol, tuple(open_trades.pop(t.symbol))))
            held[t.symbol] = Decimal(0)
    out.extend(Episode(account, symbol, tuple(ts)) for symbol, ts in open_trades.items())
    return out


def position(episode: Episode, market: str) -> Document:
    """One CLOSED position (see :class:`Episode`): when it opened and closed, its average entry and exit prices,
    its return after every fee (sells less buys less every fee, as a share of what the buys cost with their fees),
    the fees as a share of what the buys cost, how long it was held and how it ended (the closing trade: stop
    loss, take profit or sell). ``as_of`` is the closing trade's execution time. An open position has no
    document: its outcome is not known yet (a ValueError here).

    No amount (quantity, cost, P&L in the quote currency): the analyst role reads these documents and may not
    learn the size of an account (see :func:`trade`)."""
    if not episode.closed:
        raise ValueError(f"the position of {episode.account} in {episode.symbol} is still open: no outcome yet")
    buys = [t for t in episode.trades if t.side == "buy"]
    sells = [t for t in episode.trades if t.side == "sell"]
    bought, sold = sum(t.quantity for t in buys), sum(t.quantity for t in sells)
    cost, proceeds = sum(t.quantity * t.price for t in buys), sum(t.quantity * t.price for t in sells)
    fees, buy_fees = sum(t.fee for t in episode.trades), sum(t.fee for t in buys)
    entry, exit_ = float(cost / bought), float(proceeds / sold)
    pnl_pct = float((proceeds - cost - fees) / (cost + buy_fees)) if cost + buy_fees else float("nan")
    fees_pct = float(fees / cost) if cost else float("nan")
    first, last = episode.trades[0], episode.trades[-1]
    ended = {STOP_LOSS: "stop loss", TAKE_PROFIT: "take profit"}.get(reason_of(last.trade_id) or "", "sell")
    days = (last.executed_at - first.executed_at).total_seconds() / 86400
    outcome = "win" if pnl_pct > 0 else "loss" if pnl_pct < 0 else "flat trade"
    text = (
        f"Account {episode.account} held {episode.symbol} ({market}) from "
        f"{first.executed_at.astimezone(UTC):%Y-%m-%d %H:%M} to {last.executed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
        f"({days:.1f} days, {len(episode.trades)} trades): entry {_num(entry)} on average, exit {_num(exit_)} on "
        f"average, closed by a {ended}. It returned {_pct(pnl_pct)} after every fee (fees "
        f"{_pct(fees_pct, signed=False)} of what it bought): a {outcome}."
    )
    opened = first.executed_at.astimezone(UTC)
    return Document(
        key=f"position/{market}/{episode.account}/{episode.symbol}/{opened:%Y-%m-%dT%H:%M:%S}",
        kind="position",
        as_of=last.executed_at,
        text=text,
        market=market,
        symbol=episode.symbol,
        metadata={
            "account": episode.account,
            "opened_at": first.executed_at,
            "closed_at": last.executed_at,
            "entry": entry,
            "exit": exit_,
            "return": pnl_pct,
            "fees_pct": fees_pct,
            "holding_days": days,
            "ended": ended,
            "trade_ids": [t.trade_id for t in episode.trades],
        },
    )


def _shorten(text: str, limit: int = RATIONALE_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + " ..."


def recommendation(row: dict, market: str, returns: dict[int, float], exit_fill: Trade | None = None) -> Document:
    """One past recommendation (a ``recommendations.daily`` row with its generation's ``decided_at``) and what
    came of it: the symbol's close-to-close returns 1 and 7 days after the decision day's close (its
    ``reference_price``), from ``returns`` ({1: r1, 7: r7}; the 7-day one is required), and the stop-loss or
    take-profit fill of the account in the 7 days after the decision, if any (``exit_fill``).

    Point-in-time: day D's recommendation is decided at D+1 00:00 UTC; its 7-day outcome, close(D+7) / close(D)
    - 1, is known once day D+7 has closed, at D+8 00:00 UTC = ``decided_at`` + 7 days: that is ``as_of``."""
    if OUTCOME_DAYS not in returns:
        raise ValueError(f"the {OUTCOME_DAYS}-day outcome of {row['account']} {row['symbol']} is not known")
    day, account, symbol = row["decision_date"], row["account"], row["symbol"]
    decided_at: datetime = row["decided_at"]
    action = row["action"]
    generator = row["generator"] + (f" ({row['model']})" if row.get("model") else "")
    r1, r7 = returns.get(1), returns[OUTCOME_DAYS]
    moved = "rose" if r7 > 0 else "fell" if r7 < 0 else "did not move"
    head = (
        f"On {day:%Y-%m-%d} (decided {decided_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC) the {generator} generator "
        f"recommended {action.upper()} {symbol} ({market}) for account {account}: "
    )
    if action == "hold":
        body = (
            f"keep {_pct(row['current_allocation'], signed=False)} of equity, confidence {row['confidence']:.2f}, "
            f"close {_num(row['reference_price'])}."
        )
    else:
        named = (("stop-loss", "stop_loss"), ("take-profit", "take_profit"))
        levels = ", ".join(f"{name} {_num(row[k])}" for name, k in named if row[k])
        body = (
            f"target {_pct(row['target_allocation'], signed=False)} of equity (was "
            f"{_pct(row['current_allocation'], signed=False)}), confidence {row['confidence']:.2f}, close "
            f"{_num(row['reference_price'])}" + (f", {levels}" if levels else "") + "."
        )
    rationale = f" Rationale: {_shorten(row['rationale'])}" if action != "hold" and row["rationale"].strip() else ""
    outcome = f" What happened: {symbol} {moved}, {_pct(r1)} after 1 day and {_pct(r7)} after {OUTCOME_DAYS} days."
    if exit_fill is not None:
        what = "stop-loss" if reason_of(exit_fill.trade_id) == STOP_LOSS else "take-profit"
        outcome += (
            f" The account's {what} filled at {_num(float(exit_fill.price))} on "
            f"{exit_fill.executed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC."
        )
    return Document(
        key=f"recommendation/{market}/{account}/{symbol}/{day:%Y-%m-%d}",
        kind="recommendation",
        as_of=decided_at + timedelta(days=OUTCOME_DAYS),
        text=head + body + rationale + outcome,
        market=market,
        symbol=symbol,
        metadata={
            **{k: v for k, v in row.items() if k not in ("rationale", "symbol")},
            "decision_date": day.isoformat(),
            "return_1d": r1,
            "return_7d": r7,
            "exit": None
            if exit_fill is None
            else {
                "reason": reason_of(exit_fill.trade_id),
                "price": float(exit_fill.price),
                "at": exit_fill.executed_at,
                "trade_id": exit_fill.trade_id,
            },
        },
    )

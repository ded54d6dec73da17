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
from datetime import UTC, datetime, timedelta

from fks_pipelines.lib.errors import BadInputError

MAX_TEXT_CHARS = 200_000  # ~50k tokens: a document longer than this is a bug upstream, not knowledge

KINDS = ("market_summary", "signal_event", "strategy_summary")  # issue 6 adds trades, positions, recommendations


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

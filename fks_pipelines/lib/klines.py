"""The canonical kline frame every source produces, and the parsers from Binance's 12-column layouts.

A kline frame has exactly the columns of ``raw.binance_klines`` (less the load bookkeeping), in this
order. Prices and volumes are exact decimals (``Decimal(38, 8)``: Binance quotes at most 8 decimals), so
rollups downstream can equal Binance's own bars to the last digit. Times are UTC. ``close_time`` is kept at
millisecond precision (``open_time + interval - 1 ms``), as Binance's REST API reports it; the microsecond
archives published from 2025 on are truncated to the millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl

from fks_pipelines.lib.errors import BadInputError, BadValueError
from fks_pipelines.lib.symbols import check_symbol

PRICE = pl.Decimal(38, 8)
TIME = pl.Datetime("us", "UTC")

KLINE_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.String(),
    "symbol": pl.String(),
    "interval": pl.String(),
    "open_time": TIME,
    "close_time": TIME,
    "open": PRICE,
    "high": PRICE,
    "low": PRICE,
    "close": PRICE,
    "volume": PRICE,
    "quote_volume": PRICE,
    "trades": pl.Int64(),
    "taker_buy_base": PRICE,
    "taker_buy_quote": PRICE,
}
KLINE_COLUMNS = tuple(KLINE_SCHEMA)

# Binance's 12 columns, in file order, under our names ("ignore" is dropped).
BINANCE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
)
DECIMAL_COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base", "taker_buy_quote")

MARKETS = ("spot", "usdm", "coinm")

_INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Binance's kline intervals of fixed length, shortest first.
INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")

# Epoch values at or above this are microseconds (ms timestamps stay below it until the year 5138).
_MICROS_THRESHOLD = 10**14


def interval_timedelta(interval: str) -> timedelta:
    """Duration of a Binance interval string (``1m``, ``4h``, ``1d`` ...). Anything but Binance's fixed-length
    intervals (months, ``1M``, are not fixed-length; ``0m`` or ``99999999999m`` are no interval) is a
    :class:`BadValueError`."""
    if interval not in INTERVALS:
        raise BadValueError(f"unsupported interval {interval!r}: use one of Binance's {', '.join(INTERVALS)}")
    return timedelta(seconds=int(interval[:-1]) * _INTERVAL_UNITS[interval[-1]])


def bars_per_day(interval: str) -> int | None:
    """Bars in a complete UTC day (1440 for 1m), or None for intervals that do not tile a day."""
    step = interval_timedelta(interval)
    day = timedelta(days=1)
    return day // step if step <= day and day % step == timedelta(0) else None


def check_market(market: str) -> str:
    if market not in MARKETS:
        raise BadInputError(f"unknown market {market!r}; expected one of {', '.join(MARKETS)}")
    return market


def empty_klines() -> pl.DataFrame:
    return pl.DataFrame(schema=KLINE_SCHEMA)


@dataclass(frozen=True)
class ProvenAbsent:
    """A source's proof that ``symbol`` has no bars in ``[start, end)`` (e.g. it was listed later that day),
    with the evidence. Only such proof lets a load replace a day with fewer bars than it already holds."""

    symbol: str
    start: datetime
    end: datetime
    evidence: str


@dataclass(frozen=True)
class LoadScope:
    """The slice of ``raw.binance_klines`` a load replaces: these symbols of one market and interval, with
    ``start <= open_time < end``. Explicit rather than derived from the rows, so a re-load that returns fewer
    rows still removes what is no longer there."""

    market: str
    interval: str
    symbols: tuple[str, ...]
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        check_market(self.market)
        interval_timedelta(self.interval)
        if not self.symbols:
            raise BadInputError("a load scope needs at least one symbol")
        for symbol in self.symbols:
            check_symbol(symbol, where="load scope")
        for t in (self.start, self.end):
            if t.tzinfo is None:
                raise BadInputError(f"load scope time {t} must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise BadInputError(f"load scope is empty: start {self.start} is not before end {self.end}")

    @classmethod
    def for_day(cls, market: str, interval: str, symbols: Sequence[str], day: str | datetime) -> LoadScope:
        start = day if isinstance(day, datetime) else datetime.fromisoformat(day).replace(tzinfo=UTC)
        return cls(market, interval, tuple(symbols), start, start + timedelta(days=1))

    def describe(self) -> str:
        return (
            f"{self.market} {self.interval} {','.join(self.symbols)} "
            f"[{self.start.isoformat()} .. {self.end.isoformat()})"
        )


def _row_numbers(mask: pl.Series, first_row: int) -> list[int]:
    return [int(i) + first_row for i in mask.arg_true().head(5).to_list()]


def _fail_rows(message: str, mask: pl.Series, where: str, first_row: int) -> None:
    rows = _row_numbers(mask, first_row)
    count = int(mask.sum())
    more = f" (and {count - len(rows)} more)" if count > len(rows) else ""
    raise BadInputError(f"{message}{more}", where=where, row=rows[0]) from None


def klines_from_binance_strings(
    raw: pl.DataFrame,
    *,
    market: str,
    symbol: str,
    interval: str,
    where: str,
    first_row: int = 1,
) -> pl.DataFrame:
    """Turn Binance's 12 columns, read as strings, into a validated kline frame.

    ``where`` names the file or request and ``first_row`` the number of the first data row, so every error
    points at the offending row. Rejects: wrong column count, values that are not numbers, mixed or
    implausible timestamp units, ``close_time`` inconsistent with the interval, OHLC that contradicts
    itself, negative volumes, and duplicate open times.
    """
    check_market(market)
    step = interval_timedelta(interval)
    if raw.width != len(BINANCE_COLUMNS):
        raise BadInputError(
            f"expected {len(BINANCE_COLUMNS)} columns in Binance's kline layout, found {raw.width}", where=where
        )
    raw = raw.rename(dict(zip(raw.columns, BINANCE_COLUMNS, strict=True))).drop("ignore")
    if raw.height == 0:
        return empty_klines()

    missing = pl.any_horizontal(pl.all().is_null() | (pl.all().cast(pl.String).str.strip_chars() == ""))
    missing_mask = raw.select(missing).to_series()
    if missing_mask.any():
        _fail_rows("empty field in a kline row", missing_mask, where, first_row)

    casts = {c: pl.col(c).str.strip_chars().cast(PRICE, strict=False) for c in DECIMAL_COLUMNS}
    casts |= {
        c: pl.col(c).str.strip_chars().cast(pl.Int64, strict=False) for c in ("open_time", "close_time", "trades")
    }
    typed = raw.with_columns(**casts)
    for column in raw.columns:
        bad = typed[column].is_null()
        if bad.any():
            idx = int(bad.arg_true()[0])
            _fail_rows(f"column {column} is not a number: {raw[column][idx]!r}", bad, where, first_row)

    open_ms = typed["open_time"]
    micros = open_ms >= _MICROS_THRESHOLD
    if micros.any() and not micros.all():
        _fail_rows(
            "timestamps mix milliseconds and microseconds",
            ~micros if micros.sum() > raw.height / 2 else micros,
            where,
            first_row,
        )
    unit: Literal["us", "ms"] = "us" if micros.all() else "ms"
    step_in_unit = int(step.total_seconds() * (1_000_000 if unit == "us" else 1_000))
    # Binance marks a bar's end as the last tick before the next bar: open + interval - 1 (ms or µs).
    bad_close = typed["close_time"] != typed["open_time"] + step_in_unit - 1
    if bad_close.any():
        _fail_rows(f"close_time is not open_time + {interval} - 1 {unit}", bad_close, where, first_row)
    bad_grid = (typed["open_time"] % step_in_unit) != 0
    if bad_grid.any():
        _fail_rows(f"open_time is not aligned to the {interval} grid", bad_grid, where, first_row)

    frame = typed.select(
        pl.lit(market).alias("market"),
        pl.lit(symbol).alias("symbol"),
        pl.lit(interval).alias("interval"),
        pl.from_epoch("open_time", time_unit=unit).dt.replace_time_zone("UTC").cast(TIME).alias("open_time"),
        # Kept at ms precision: truncates µs archives' ...999999 to ...999 ms (see module docstring).
        pl.from_epoch(pl.col("close_time") // (1000 if unit == "us" else 1), time_unit="ms")
        .dt.replace_time_zone("UTC")
        .cast(TIME)
        .alias("close_time"),
        *[
            pl.col(c)
            for c in (
                "open",
                "high",
                "low",
                "close",
                "volume",
                "quote_volume",
                "trades",
                "taker_buy_base",
                "taker_buy_quote",
            )
        ],
    ).select(KLINE_COLUMNS)
    validate_klines(frame, where=where, first_row=first_row)
    return frame


# Columns a source may leave NULL because it does not publish them (freqtrade keeps only OHLCV).
NULLABLE_COLUMNS = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")


def validate_klines(
    frame: pl.DataFrame, *, where: str, first_row: int = 1, nullable: Sequence[str] = NULLABLE_COLUMNS
) -> None:
    """Reject a kline frame that breaks the invariants every Binance bar satisfies.

    Used on every load, whatever the source: schema, consistent OHLC, non-negative volumes and trades,
    ``close_time = open_time + interval - 1 ms``, and no duplicate natural key. Only the ``nullable`` columns
    (those some sources do not publish, e.g. freqtrade) may be NULL; a NULL rule value never fails a rule.
    """
    if dict(frame.schema) != KLINE_SCHEMA:
        got = ", ".join(f"{k}:{v}" for k, v in frame.schema.items())
        raise BadInputError(f"kline frame has the wrong schema ({got})", where=where)
    if frame.height == 0:
        return
    required = [c for c in frame.columns if c not in nullable]
    if frame.select(required).null_count().sum_horizontal().item():
        nulls = frame.select(pl.any_horizontal(pl.col(required).is_null())).to_series()
        _fail_rows("null value in a kline row", nulls, where, first_row)
    for market in frame["market"].unique().to_list():
        check_market(market)
    for symbol in frame["symbol"].unique().to_list():
        check_symbol(symbol, where=where)
    rules = {
        "high is below max(open, close)": pl.col("high") < pl.max_horizontal("open", "close"),
        "low is above min(open, close)": pl.col("low") > pl.min_horizontal("open", "close"),
        "a price is not positive": pl.min_horizontal("open", "high", "low", "close") <= 0,
        "a volume is negative": pl.min_horizontal("volume", "quote_volume", "taker_buy_base", "taker_buy_quote") < 0,
        "trades is negative": pl.col("trades") < 0,
    }
    close_offset = pl.lit(None, dtype=pl.Duration("us"))
    for interval in frame["interval"].unique().to_list():
        step = interval_timedelta(interval) - timedelta(milliseconds=1)
        close_offset = pl.when(pl.col("interval") == interval).then(pl.lit(step)).otherwise(close_offset)
    rules["close_time is not open_time + interval - 1 ms"] = pl.col("close_time") - pl.col("open_time") != close_offset
    # One pass for the common case (all good); the per-rule pass only runs to explain a failure.
    if frame.select(pl.any_horizontal(*rules.values()).any()).item():
        violations = frame.select(**{name: expr for name, expr in rules.items()})
        for name in rules:
            if violations[name].any():
                _fail_rows(name, violations[name], where, first_row)
    # Duplicates: a cheap hash count first, the exact (slower) search only when it finds something.
    key = pl.struct("market", "symbol", "interval", "open_time")
    if frame.select(key.hash().n_unique()).item() != frame.height:
        dup = frame.select(key.is_duplicated()).to_series()
        if dup.any():
            _fail_rows("duplicate (market, symbol, interval, open_time)", dup, where, first_row)


def check_within_scope(frame: pl.DataFrame, scope: LoadScope, *, where: str) -> None:
    """A load may only write inside the slice it replaces; anything else is a caller's mistake."""
    if frame.height == 0:
        return
    outside = ~(
        (frame["market"] == scope.market)
        & (frame["interval"] == scope.interval)
        & frame["symbol"].is_in(list(scope.symbols))
        & (frame["open_time"] >= scope.start)
        & (frame["open_time"] < scope.end)
    )
    if outside.any():
        _fail_rows(f"row lies outside the load scope {scope.describe()}", outside, where, 1)


def check_closed(frame: pl.DataFrame, scope: LoadScope, *, now: datetime) -> None:
    """Only history is loaded: the scope must have ended by ``now`` (a UTC day is loaded once it is over) and
    every bar must have closed. A bar still forming would be stored as if final and never corrected."""
    if scope.end > now:
        raise BadInputError(
            f"not ended yet (it ends {scope.end.isoformat()}, it is now {now.isoformat(timespec='seconds')}): "
            "only complete UTC days are loaded",
            where=scope.describe(),
        )
    if frame.height:
        open_bars = frame["close_time"] > now
        if open_bars.any():
            first = frame["close_time"][int(open_bars.arg_true()[0])]
            _fail_rows(
                f"bar has not closed yet (close_time {first.isoformat()} is after now)", open_bars, scope.describe(), 1
            )

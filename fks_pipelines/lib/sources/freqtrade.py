"""freqtrade OHLCV data files, read into the canonical kline frame (``frame.KLINE_SCHEMA``).

Traders keep years of bars in freqtrade's data directory (``user_data/data/<exchange>/``). This module reads
them exactly as freqtrade writes them; it follows freqtrade's ``freqtrade/data/history/datahandlers``:

- ``json`` (``JsonDataHandler``): ``DataFrame.to_json(orient="values")`` of the columns date, open, high, low,
  close, volume, ``date`` as integer epoch milliseconds, prices and volume as JSON numbers:
  ``[[1502942400000, 4261.48, 4313.62, 4261.32, 4308.83, 47.181009], ...]``;
- ``jsongz`` (``JsonGzDataHandler``): the same text, gzip-compressed, named ``*.json.gz``;
- ``feather`` (``FeatherDataHandler``, freqtrade's default): ``DataFrame.to_feather(compression="lz4")``, an
  Arrow IPC file with the columns date (a UTC datetime), open, high, low, close, volume (float64);
- ``parquet`` (``ParquetDataHandler``): ``DataFrame.to_parquet`` of the same columns.

File names follow ``IDataHandler._pair_data_filename``: the pair with ``/`` and ``:`` (and `` .@$+``) replaced
by ``_``, the timeframe, and for non-spot candles ``-<candle type>`` in a ``futures/`` subfolder:
``BTC_USDT-1h.json`` (spot ``BTC/USDT``), ``futures/BTC_USDT_USDT-1h-futures.feather`` (USD-M ``BTC/USDT:USDT``).
Only OHLCV candles are in scope: spot, and ``futures`` (loaded as market ``usdm``). Mark, index, premium-index
and funding-rate candles (``-mark``, ``-index``, ``-premiumIndex``, ``-funding_rate``) and trades files are
refused with the reason (skipped when a whole directory is read).

freqtrade keeps only these six columns: quote_volume, trades, taker_buy_base and taker_buy_quote are NULL in the
frame (and in ``raw.binance_klines``: the source does not publish them). Floats become exact decimals by the
shortest round-trip of the float (Binance quotes at most 8 decimals, which a float64 keeps exactly).

Every file is validated whole before anything of it is loaded; each refusal is one ``BadInputError`` naming the
file and the row: invalid or truncated JSON or gzip, a row with the wrong number of fields, a value that is not
a number (a quoted price), a missing value, a row out of order, a duplicate open time, a time off the interval's
grid, OHLC that contradicts itself, a negative volume, and a bar that has not closed yet.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.klines import (
    INTERVALS,
    KLINE_COLUMNS,
    PRICE,
    TIME,
    ProvenAbsent,
    check_market,
    interval_timedelta,
    validate_klines,
)
from fks_pipelines.lib.symbols import check_symbol

FORMATS = {".json.gz": "jsongz", ".json": "json", ".feather": "feather", ".parquet": "parquet"}
OHLCV_COLUMNS = ("date", "open", "high", "low", "close", "volume")
# Columns of the kline frame a freqtrade file does not have; they are NULL in raw.binance_klines.
NULL_COLUMNS = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")
CANDLE_TYPES = ("spot", "futures")
REFUSED_CANDLE_TYPES = ("mark", "index", "premiumIndex", "funding_rate")

_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9_]+?)-(?P<timeframe>\d+(?:[smhdw]|Mo|M))"
    r"(?:-(?P<candle>[A-Za-z_]+))?(?P<ext>\.json\.gz|\.json|\.feather|\.parquet)$"
)


@dataclass(frozen=True)
class FreqtradeName:
    """What a freqtrade file name says: the pair (``BTC/USDT``, ``BTC/USDT:USDT``), Binance's symbol, the interval,
    the candle type, the market it loads into and the file format."""

    pair: str
    symbol: str
    interval: str
    candle_type: str
    market: str
    fmt: str


@dataclass(frozen=True)
class FreqtradeFile:
    """A parsed, validated freqtrade file: its kline frame (ascending open_time) and the UTC days it covers."""

    path: Path
    name: FreqtradeName
    frame: pl.DataFrame

    @property
    def days(self) -> list[date]:
        """Every UTC day from the first bar's to the last bar's, gaps included (a day inside the range that has
        no bar is an exchange outage, loaded as empty)."""
        if self.frame.height == 0:
            return []
        first, last = self.frame["open_time"][0].date(), self.frame["open_time"][-1].date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def exchange_gaps(file: FreqtradeFile) -> list[ProvenAbsent]:
    """The runs of bars missing between the file's first and last bar: freqtrade stores what the exchange
    returned, so inside its range a missing bar did not exist (Binance's outages and maintenance)."""
    frame = file.frame
    if frame.height < 2:
        return []
    step = interval_timedelta(file.name.interval)
    gaps = frame.select((pl.col("open_time").shift(1) + step).alias("start"), pl.col("open_time").alias("end")).filter(
        pl.col("start") < pl.col("end")
    )
    evidence = f"{file.path.name} has no bar there: not published by the exchange (outage)"
    return [ProvenAbsent(file.name.symbol, start, end, evidence) for start, end in gaps.iter_rows()]


def pair_to_symbol(pair: str, *, where: str = "pair") -> str:
    """freqtrade's pair (``BTC/USDT``, or ``BTC/USDT:USDT`` for a USDT-settled future) as Binance's symbol
    (``BTCUSDT``), checked by the one symbol rule. A coin-settled future (``BTC/USD:BTC``) has another symbol on
    Binance (``BTCUSD_PERP``) and is refused."""
    base_quote, _, settle = pair.partition(":")
    base, sep, quote = base_quote.partition("/")
    if not sep or not base or not quote or "/" in quote:
        raise BadInputError(f"{pair!r} is not a freqtrade pair like BTC/USDT or BTC/USDT:USDT", where=where)
    if settle and settle != quote:
        raise BadInputError(
            f"{pair!r} is settled in {settle}, not its quote {quote}: coin-margined futures are not supported",
            where=where,
        )
    return check_symbol(f"{base}{quote}".upper(), where=where)


def parse_name(path: Path) -> FreqtradeName:
    """Read pair, interval, candle type and format from a freqtrade file name, or say in one line why the file
    is not an OHLCV file this importer takes."""
    where = str(path)
    match = _NAME.match(path.name)
    if not match:
        raise BadInputError(
            "not a freqtrade OHLCV file name (PAIR-TIMEFRAME[-futures].json|json.gz|feather|parquet, "
            "e.g. BTC_USDT-1h.json)",
            where=where,
        )
    candle = match["candle"] or "spot"
    if candle in REFUSED_CANDLE_TYPES:
        raise BadInputError(
            f"{candle} candles are not OHLCV trades bars; only spot and futures candles are imported", where=where
        )
    if candle not in CANDLE_TYPES:
        raise BadInputError(f"unknown freqtrade candle type {candle!r}", where=where)
    timeframe = match["timeframe"]
    if timeframe not in INTERVALS:
        raise BadInputError(
            f"timeframe {timeframe} is not one of Binance's fixed-length intervals ({', '.join(INTERVALS)})",
            where=where,
        )
    parts = match["pair"].split("_")
    if candle == "futures":
        if len(parts) != 3:
            raise BadInputError(
                f"futures file name {match['pair']!r} is not BASE_QUOTE_SETTLE (e.g. BTC_USDT_USDT)", where=where
            )
        pair = f"{parts[0]}/{parts[1]}:{parts[2]}"
    else:
        if len(parts) != 2:
            raise BadInputError(f"spot file name {match['pair']!r} is not BASE_QUOTE (e.g. BTC_USDT)", where=where)
        pair = f"{parts[0]}/{parts[1]}"
    return FreqtradeName(
        pair=pair,
        symbol=pair_to_symbol(pair, where=where),
        interval=timeframe,
        candle_type=candle,
        market="usdm" if candle == "futures" else "spot",
        fmt=FORMATS[match["ext"]],
    )


def _json_rows(data: bytes, where: str) -> list:
    try:
        text = data.decode("utf-8")
        rows = json.loads(text)
    except UnicodeDecodeError as exc:
        raise BadInputError(f"not UTF-8 text at byte {exc.start}", where=where) from None
    except json.JSONDecodeError as exc:
        # Each row opens one '[' after the outer one: the count before the error says which row broke.
        row = max(exc.doc.count("[", 0, exc.pos) - 1, 1)
        raise BadInputError(
            f"invalid or truncated JSON ({exc.msg} at character {exc.pos})", where=where, row=row
        ) from None
    if not isinstance(rows, list):
        raise BadInputError(
            f"expected a JSON array of [date, open, high, low, close, volume], got {type(rows).__name__}", where=where
        )
    return rows


def _columns_from_json(rows: list, where: str) -> pl.DataFrame:
    """freqtrade's ``orient=values`` rows, each checked: six fields, an integer ms time, five numbers."""
    columns: list[list] = [[] for _ in OHLCV_COLUMNS]
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(OHLCV_COLUMNS):
            shown = json.dumps(row)[:80]
            raise BadInputError(
                f"expected {len(OHLCV_COLUMNS)} fields [date, open, high, low, close, volume], got {shown}",
                where=where,
                row=i,
            )
        for j, value in enumerate(row):
            ok = isinstance(value, int) if j == 0 else isinstance(value, int | float)
            if not ok or isinstance(value, bool):
                what = "an integer epoch-ms time" if j == 0 else "a number"
                raise BadInputError(
                    f"field {OHLCV_COLUMNS[j]} is {json.dumps(value)[:40]}, not {what}", where=where, row=i
                )
            columns[j].append(value)
    return pl.DataFrame(
        {
            "date": pl.Series(columns[0], dtype=pl.Int64),
            **{c: pl.Series(columns[j], dtype=pl.Float64) for j, c in enumerate(OHLCV_COLUMNS) if j},
        }
    )


def _columns_from_table(table: pl.DataFrame, where: str) -> pl.DataFrame:
    """A feather or parquet table (freqtrade reads its columns by position) as date (epoch ms) and five floats."""
    if table.width != len(OHLCV_COLUMNS):
        raise BadInputError(
            f"expected {len(OHLCV_COLUMNS)} columns (date, open, high, low, close, volume), "
            f"found {table.width} ({', '.join(table.columns)})",
            where=where,
        )
    table = table.rename(dict(zip(table.columns, OHLCV_COLUMNS, strict=True)))
    date_type = table.schema["date"]
    if isinstance(date_type, pl.Datetime):
        if date_type.time_zone not in (None, "UTC"):
            table = table.with_columns(pl.col("date").dt.convert_time_zone("UTC"))
        ms = pl.col("date").dt.epoch("ms")
    elif date_type.is_integer():
        ms = pl.col("date").cast(pl.Int64)
    else:
        raise BadInputError(f"column date is {date_type}, not a datetime or epoch milliseconds", where=where)
    for column in OHLCV_COLUMNS[1:]:
        dtype = table.schema[column]
        if not (dtype.is_float() or dtype.is_integer() or dtype.is_decimal()):
            first = table[column][0] if table.height else None
            raise BadInputError(f"column {column} is {dtype}, not numbers (first value {first!r})", where=where, row=1)
    return table.select(ms.alias("date"), *[pl.col(c).cast(pl.Float64) for c in OHLCV_COLUMNS[1:]])


def _read_columns(path: Path, fmt: str) -> pl.DataFrame:
    where = str(path)
    if fmt in ("json", "jsongz"):
        data = path.read_bytes()
        if fmt == "jsongz":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise BadInputError(f"not a readable gzip file, truncated? ({exc})", where=where) from None
        return _columns_from_json(_json_rows(data, where), where)
    try:
        table = pl.read_ipc(path) if fmt == "feather" else pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt file; all mean the same thing here
        raise BadInputError(
            f"not a readable {fmt} file ({type(exc).__name__}: {exc})".split("\n")[0], where=where
        ) from None
    return _columns_from_table(table, where)


def _first_row(mask: pl.Series) -> int:
    return int(mask.arg_true()[0]) + 1


def klines_from_ohlcv(
    ohlcv: pl.DataFrame, *, market: str, symbol: str, interval: str, where: str, now: datetime
) -> pl.DataFrame:
    """date (epoch ms) and open/high/low/close/volume floats as a validated kline frame, or a BadInputError naming
    the first offending row (1-based, in file order)."""
    step_ms = int(interval_timedelta(interval).total_seconds() * 1000)
    for column in OHLCV_COLUMNS:
        bad = ohlcv[column].is_null()
        if column != "date":
            bad = bad | ohlcv[column].is_nan() | ohlcv[column].is_infinite()
        if bad.any():
            raise BadInputError(f"column {column} has no finite value", where=where, row=_first_row(bad))
    times = ohlcv["date"]
    step = times.diff()
    if (step <= 0).any():
        row = _first_row((step <= 0).fill_null(False))
        what = "duplicate open_time" if step[row - 1] == 0 else "row out of order (open_time before the previous row's)"
        this, previous = (datetime.fromtimestamp(times[r] / 1000, UTC) for r in (row - 1, row - 2))
        raise BadInputError(
            f"{what}: {this:%Y-%m-%d %H:%M} after {previous:%Y-%m-%d %H:%M}",
            where=where,
            row=row,
        )
    off_grid = times % step_ms != 0
    if off_grid.any():
        raise BadInputError(f"open_time is not aligned to the {interval} grid", where=where, row=_first_row(off_grid))
    frame = ohlcv.select(
        pl.lit(market).alias("market"),
        pl.lit(symbol).alias("symbol"),
        pl.lit(interval).alias("interval"),
        pl.from_epoch("date", time_unit="ms").dt.replace_time_zone("UTC").cast(TIME).alias("open_time"),
        pl.from_epoch(pl.col("date") + step_ms - 1, time_unit="ms")
        .dt.replace_time_zone("UTC")
        .cast(TIME)
        .alias("close_time"),
        *[pl.col(c).cast(PRICE) for c in ("open", "high", "low", "close", "volume")],
        pl.lit(None, dtype=PRICE).alias("quote_volume"),
        pl.lit(None, dtype=pl.Int64).alias("trades"),
        pl.lit(None, dtype=PRICE).alias("taker_buy_base"),
        pl.lit(None, dtype=PRICE).alias("taker_buy_quote"),
    ).select(KLINE_COLUMNS)
    validate_klines(frame, where=where, nullable=NULL_COLUMNS)
    unclosed = frame["close_time"] > now
    if unclosed.any():
        row = _first_row(unclosed)
        raise BadInputError(
            f"bar has not closed yet (close_time {frame['close_time'][row - 1].isoformat()} is after now)",
            where=where,
            row=row,
        )
    return frame


def read_freqtrade_file(path: str | Path, *, market: str | None = None, now: datetime | None = None) -> FreqtradeFile:
    """Parse and validate one freqtrade OHLCV file (format from its name); ``market`` overrides the market the
    name implies (spot, or usdm for futures candles)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("no such file", where=str(path))
    name = parse_name(path)
    if market is not None:
        name = FreqtradeName(name.pair, name.symbol, name.interval, name.candle_type, check_market(market), name.fmt)
    ohlcv = _read_columns(path, name.fmt)
    frame = klines_from_ohlcv(
        ohlcv,
        market=name.market,
        symbol=name.symbol,
        interval=name.interval,
        where=str(path),
        now=now or datetime.now(UTC),
    )
    return FreqtradeFile(path=path, name=name, frame=frame)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def find_freqtrade_files(
    root: Path,
    *,
    symbols: Iterable[str] | None = None,
    intervals: Iterable[str] | None = None,
) -> tuple[list[tuple[Path, FreqtradeName]], list[Skipped]]:
    """The OHLCV files under ``root`` (a file, or a data directory such as ``user_data/data/binance`` with its
    ``futures/`` subfolder), filtered by symbol and interval, and the files passed over with the reason. A
    single file that is not one is an error rather than a skip."""
    wanted_symbols = set(symbols) if symbols else None
    wanted_intervals = set(intervals) if intervals else None
    if root.is_file():
        candidates = [root]
    elif root.is_dir():
        candidates = sorted(p for p in root.rglob("*") if p.is_file() and any(p.name.endswith(s) for s in FORMATS))
    else:
        raise BadInputError("no such file or directory", where=str(root))
    found: list[tuple[Path, FreqtradeName]] = []
    skipped: list[Skipped] = []
    for path in candidates:
        try:
            name = parse_name(path)
        except BadInputError as exc:
            if root.is_file():
                raise
            skipped.append(Skipped(path, str(exc)))
            continue
        if wanted_symbols is not None and name.symbol not in wanted_symbols:
            continue
        if wanted_intervals is not None and name.interval not in wanted_intervals:
            continue
        found.append((path, name))
    return found, skipped


def split_days(frame: pl.DataFrame) -> dict[date, pl.DataFrame]:
    """The rows of ``frame`` per UTC day of their open_time, in day order."""
    if frame.height == 0:
        return {}
    parts = frame.with_columns(_day=pl.col("open_time").dt.date()).partition_by(
        "_day", as_dict=True, maintain_order=True
    )
    return {key[0]: part.drop("_day") for key, part in sorted(parts.items())}


def whole_days(data_dir: Path, symbols: Iterable[str], interval: str, market: str = "spot") -> tuple[date, date]:
    """The UTC days every one of ``symbols`` holds from start to end in ``data_dir``'s ``interval`` files: from the
    first day whose first bar opens at midnight to the last day whose last bar closes at the next midnight (the
    range a run can load without a partial day at either end). A missing file is a one-line error."""
    firsts, lasts = [], []
    for symbol in symbols:
        found, _ = find_freqtrade_files(data_dir, symbols=[symbol], intervals=[interval])
        paths = [path for path, name in found if name.market == market]
        if not paths:
            raise BadInputError(f"no {market} {interval} freqtrade file for {symbol}", where=str(data_dir))
        frame = read_freqtrade_file(sorted(paths)[0]).frame
        if frame.height == 0:
            raise BadInputError(f"the {symbol} {interval} file holds no bars", where=str(paths[0]))
        step = interval_timedelta(interval)
        first, last = frame["open_time"][0], frame["open_time"][-1] + step
        midnight = datetime.combine(first.date(), time(), UTC)
        firsts.append(first.date() if first == midnight else first.date() + timedelta(days=1))
        lasts.append(last.date() - timedelta(days=1))
    return max(firsts), min(lasts)

"""Loading the files users hold (a freqtrade data directory, data.binance.vision archives) into
``raw.binance_klines`` through the one load path, one transaction per UTC day (``raw.replace_days``).

Every file is parsed and validated before anything is written: a bad file stops the import with its one-line
reason and nothing of any file written. A UTC day that has not ended yet (today) is not loaded: only complete
days are history; its bars are left for a later run and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import psycopg

from fks_pipelines.lib.db.raw import replace_days
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.klines import LoadScope
from fks_pipelines.lib.sources import KlineSource
from fks_pipelines.lib.sources.files import KlineFile
from fks_pipelines.lib.sources.freqtrade import (
    FreqtradeFile,
    Skipped,
    exchange_gaps,
    find_freqtrade_files,
    read_freqtrade_file,
)


@dataclass(frozen=True)
class FileLoad:
    """One file's load: the scope it replaced (whole UTC days), rows written, days committed, and the bars of a
    day not yet over that were left out."""

    path: Path
    scope: LoadScope
    rows: int
    days: int
    seconds: float
    left_out_rows: int = 0

    def as_json(self) -> dict:
        return {
            "path": str(self.path),
            "market": self.scope.market,
            "symbol": ",".join(self.scope.symbols),
            "interval": self.scope.interval,
            "first_day": f"{self.scope.start:%Y-%m-%d}",
            "last_day": f"{self.scope.end - timedelta(days=1):%Y-%m-%d}",
            "rows": self.rows,
            "days": self.days,
            "seconds": round(self.seconds, 3),
            "left_out_rows": self.left_out_rows,
        }


@dataclass
class ImportResult:
    loads: list[FileLoad] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _complete_days(frame: pl.DataFrame, now: datetime) -> tuple[pl.DataFrame, int]:
    """The rows of days that have ended by ``now``, and how many rows of the current day were left out."""
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    kept = frame.filter(pl.col("open_time") < today)
    return kept, frame.height - kept.height


def whole_days(scope: LoadScope) -> bool:
    """Whether ``scope`` is whole UTC days (a daily or monthly archive), so it can load day by day."""
    midnight = datetime.min.time()
    return scope.start.time() == midnight and scope.end.time() == midnight


def day_scope_of(frame: pl.DataFrame, market: str, interval: str, symbol: str) -> LoadScope | None:
    """Whole UTC days from the first bar's day to the last bar's (None for no bars)."""
    if frame.height == 0:
        return None
    first: date = frame["open_time"].min().date()  # type: ignore[union-attr]
    last: date = frame["open_time"].max().date()  # type: ignore[union-attr]
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return LoadScope(market, interval, (symbol,), start, end)


def _per_file(on_day: Callable[[Path, int, int], None] | None, path: Path) -> Callable[[int, int], None] | None:
    if on_day is None:
        return None
    return lambda done, total: on_day(path, done, total)


def import_freqtrade(
    conn: psycopg.Connection,
    root: Path,
    *,
    market: str | None = None,
    symbols: Iterable[str] | None = None,
    intervals: Iterable[str] | None = None,
    force: bool = False,
    on_file: Callable[[int, int, FileLoad], None] | None = None,
    on_day: Callable[[Path, int, int], None] | None = None,
) -> ImportResult:
    """Import a freqtrade file or data directory. All files are parsed and validated first (a bad one raises its
    BadInputError and nothing is written); then each file replaces its days, one transaction per UTC day. The bars a
    file lacks inside its range are recorded as known gaps (``raw.known_gaps``): the exchange did not publish them."""
    found, skipped = find_freqtrade_files(root, symbols=symbols, intervals=intervals)
    if not found:
        raise BadInputError("no freqtrade OHLCV files to import (check --symbols/--timeframes)", where=str(root))
    now = datetime.now(UTC)
    parsed: list[FreqtradeFile] = [read_freqtrade_file(path, market=market, now=now) for path, _ in found]
    result = ImportResult(skipped=list(skipped))
    for i, file in enumerate(parsed, start=1):
        frame, left_out = _complete_days(file.frame, now)
        scope = day_scope_of(frame, file.name.market, file.name.interval, file.name.symbol)
        if scope is None:
            result.skipped.append(Skipped(file.path, "no bars of a complete UTC day"))
            continue
        began = datetime.now(UTC)
        loads = replace_days(
            conn,
            frame,
            scope,
            source="freqtrade",
            detail=str(file.path),
            force=force,
            absent=exchange_gaps(file),
            on_day=_per_file(on_day, file.path),
        )
        load = FileLoad(
            path=file.path,
            scope=scope,
            rows=sum(r.rows_loaded for r in loads),
            days=len(loads),
            seconds=(datetime.now(UTC) - began).total_seconds(),
            left_out_rows=left_out,
        )
        result.loads.append(load)
        if on_file:
            on_file(i, len(parsed), load)
    return result


def load_kline_file(conn: psycopg.Connection, parsed: KlineFile, *, force: bool = False) -> FileLoad:
    """Load a data.binance.vision file: a daily file in one transaction, a monthly one day by day."""
    began = datetime.now(UTC)
    loads = replace_days(
        conn, parsed.frame, parsed.scope, source="file", detail=str(parsed.path), checksum=parsed.sha256, force=force
    )
    return FileLoad(
        path=parsed.path,
        scope=parsed.scope,
        rows=sum(r.rows_loaded for r in loads),
        days=len(loads),
        seconds=(datetime.now(UTC) - began).total_seconds(),
    )


def load_source_days(
    conn: psycopg.Connection,
    source: KlineSource,
    market: str,
    interval: str,
    symbols: list[str],
    days: list[date],
    *,
    force: bool = False,
    on_day: Callable[[int, date, int, float], None] | None = None,
) -> list[LoadScope]:
    """Fetch each UTC day of ``days`` from ``source`` (sample, REST) and replace it through the asset's load path
    (``load_day``, one transaction per day); ``on_day(i, day, rows, seconds)`` after each. A day that has not
    ended is refused (BadInputError) before anything is fetched; a refused replacement stops (RefusedLoadError).
    The scopes loaded, in order."""
    from fks_pipelines.lib.sources.load import load_day

    check_days_ended(market, interval, symbols, days)
    scopes = []
    for i, day in enumerate(days, start=1):
        result, _ = load_day(conn, source, market, interval, symbols, day, force=force)
        scopes.append(result.scope)
        if on_day:
            on_day(i, day, result.rows_loaded, result.duration_s)
    return scopes


def check_days_ended(market: str, interval: str, symbols: list[str], days: list[date]) -> None:
    """Only history is loaded: a day of ``days`` that has not ended (UTC) is a BadInputError naming it."""
    from fks_pipelines.lib.klines import check_closed, empty_klines

    if days:
        last = LoadScope.for_day(market, interval, symbols, max(days).isoformat())
        check_closed(empty_klines(), last, now=datetime.now(UTC))


def kline_files(paths: Iterable[Path]) -> list[Path]:
    """The kline files named, a folder standing for every .zip, .csv and .json under it (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".zip", ".csv", ".json"))
        else:
            files.append(path)
    return files


def load_binance_file(
    conn: psycopg.Connection,
    path: Path,
    *,
    market: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    force: bool = False,
) -> tuple[int, LoadScope]:
    """(rows loaded, scope) of one data.binance.vision archive or REST JSON dump: an archive replaces the UTC days
    its name covers (one transaction per day), a REST dump exactly the span it holds. A bad file: BadInputError,
    nothing of it written."""
    from fks_pipelines.lib.db.raw import replace_klines
    from fks_pipelines.lib.sources.files import read_kline_file

    parsed = read_kline_file(path, market=market, symbol=symbol, interval=interval)
    if whole_days(parsed.scope):
        return load_kline_file(conn, parsed, force=force).rows, parsed.scope
    loaded = replace_klines(
        conn, parsed.frame, parsed.scope, source="file", detail=str(path), checksum=parsed.sha256, force=force
    )
    return loaded.rows_loaded, parsed.scope

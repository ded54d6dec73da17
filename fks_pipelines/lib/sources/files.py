"""Local kline files in Binance's 12-column layout: data.binance.vision zips and CSVs, and REST JSON dumps.

What a file holds is read from its name where Binance's naming says it (``BTCUSDT-1m-2020-01-01.zip``,
monthly ``BTCUSDT-1m-2020-01.zip``); the market from the path (``spot``, ``futures/um``, ``futures-cm`` ...)
unless given. Spot archives have no header row; futures archives may have one: both are detected.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from fks_pipelines.lib.errors import BadInputError, ChecksumMismatchError
from fks_pipelines.lib.klines import (
    BINANCE_COLUMNS,
    LoadScope,
    interval_timedelta,
    klines_from_binance_strings,
)
from fks_pipelines.lib.symbols import check_symbol

_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9_]+)-(?P<interval>\d+[smhdw])-(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?$"
)


@dataclass(frozen=True)
class KlineFile:
    """A parsed, validated file and the slice of the raw table it replaces."""

    path: Path
    frame: pl.DataFrame
    scope: LoadScope
    sha256: str
    has_header: bool


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, checksum_path: Path | None = None) -> str:
    """Check ``path`` against its ``.CHECKSUM`` sidecar (``<sha256>  <name>``); return the digest.

    Raises ChecksumMismatchError on a mismatch and BadInputError on an unreadable sidecar.
    """
    checksum_path = checksum_path or path.with_name(path.name + ".CHECKSUM")
    text = checksum_path.read_text(encoding="ascii", errors="replace").strip()
    fields = text.split()
    if not fields or not re.fullmatch(r"[0-9a-fA-F]{64}", fields[0]):
        raise BadInputError("CHECKSUM sidecar does not start with a sha256 hex digest", where=str(checksum_path))
    if len(fields) > 1 and fields[-1] != path.name:
        raise BadInputError(f"CHECKSUM names {fields[-1]!r}, not {path.name!r}", where=str(checksum_path))
    actual = sha256_of(path)
    if actual != fields[0].lower():
        raise ChecksumMismatchError(
            f"sha256 {actual} does not match {fields[0].lower()} from {checksum_path.name}", where=str(path)
        )
    return actual


def market_from_path(path: Path) -> str | None:
    """Binance's own archive paths say the market: ``.../spot/...``, ``.../futures/um/...``, ``futures-cm``."""
    parts = [p.lower() for p in path.parts]
    joined = "/".join(parts)
    if re.search(r"futures[/_-]?um|usd-?m|/um/", joined):
        return "usdm"
    if re.search(r"futures[/_-]?cm|coin-?m|/cm/", joined):
        return "coinm"
    if "spot" in parts or re.search(r"(^|/)spot[/_-]", joined):
        return "spot"
    return None


def _scope_from_name(
    stem: str, market: str, symbol: str | None, interval: str | None
) -> tuple[str, str, LoadScope | None]:
    if symbol is not None:
        check_symbol(symbol, where=stem)
    match = _NAME.match(stem)
    if not match:
        if not (symbol and interval):
            raise BadInputError(
                "file name is not Binance's SYMBOL-INTERVAL-YYYY-MM[-DD]; pass the symbol and interval explicitly",
                where=stem,
            )
        return symbol, interval, None
    symbol = symbol or match["symbol"]
    interval = interval or match["interval"]
    year, month = int(match["year"]), int(match["month"])
    if match["day"]:
        start = datetime(year, month, int(match["day"]), tzinfo=UTC)
        end = start + timedelta(days=1)
    else:
        start = datetime(year, month, 1, tzinfo=UTC)
        end = start + timedelta(days=monthrange(year, month)[1])
    return symbol, interval, LoadScope(market, interval, (symbol,), start, end)


def _csv_bytes(path: Path) -> bytes:
    if path.suffix.lower() != ".zip":
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise BadInputError(f"expected one CSV member in the zip, found {len(members)}", where=str(path))
            return archive.read(members[0])
    except zipfile.BadZipFile as exc:
        raise BadInputError(f"not a readable zip archive ({exc})", where=str(path)) from None


def parse_csv_bytes(data: bytes, *, where: str) -> tuple[pl.DataFrame, bool]:
    """Read Binance kline CSV bytes as strings; returns (frame, had_header)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n")
        raise BadInputError("file is not ASCII text (garbled or binary content)", where=where, row=line + 1) from None
    first_line = text.split("\n", 1)[0]
    first_field = first_line.split(",", 1)[0].strip()
    has_header = bool(first_field) and not first_field.isdigit()
    if has_header and first_field.lower() not in ("open_time", "open time", "opentime"):
        raise BadInputError(f"unrecognised header {first_line!r}", where=where)
    lines = text.splitlines()
    body = lines[1:] if has_header else lines
    widths = [(i, line.count(",") + 1) for i, line in enumerate(body, start=1) if line.strip()]
    wrong = [(i, w) for i, w in widths if w != len(BINANCE_COLUMNS)]
    if wrong:
        row, width = wrong[0]
        raise BadInputError(
            f"expected {len(BINANCE_COLUMNS)} comma-separated fields, found {width} (truncated or garbled line?)",
            where=where,
            row=row,
        )
    if not body:
        return pl.DataFrame(schema={c: pl.String for c in BINANCE_COLUMNS}), has_header
    frame = pl.read_csv(
        io.BytesIO(data),
        has_header=False,
        skip_rows=1 if has_header else 0,
        new_columns=list(BINANCE_COLUMNS),
        infer_schema=False,
    )
    return frame, has_header


def rest_rows_to_strings(rows: object, *, where: str) -> pl.DataFrame:
    """Binance REST klines (a JSON array of 12-element arrays) as a frame of strings."""
    if not isinstance(rows, list):
        raise BadInputError(f"expected a JSON array of klines, got {type(rows).__name__}", where=where)
    columns: list[list[str]] = [[] for _ in BINANCE_COLUMNS]
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(BINANCE_COLUMNS):
            raise BadInputError(
                f"expected a {len(BINANCE_COLUMNS)}-element array, got {json.dumps(row)[:80]}", where=where, row=i
            )
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | str | float):
                raise BadInputError(
                    f"field {BINANCE_COLUMNS[j]} is {json.dumps(value)[:40]}, not a number", where=where, row=i
                )
            columns[j].append(str(value))
    return pl.DataFrame(
        {name: pl.Series(name, col, dtype=pl.String) for name, col in zip(BINANCE_COLUMNS, columns, strict=True)}
    )


def read_kline_file(
    path: str | Path,
    *,
    market: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    require_checksum: bool = False,
) -> KlineFile:
    """Parse and validate one file. A ``.CHECKSUM`` sidecar, when present (or required), is verified first."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise BadInputError("no such file", where=where)
    sidecar = path.with_name(path.name + ".CHECKSUM")
    if sidecar.exists() or require_checksum:
        if not sidecar.exists():
            raise BadInputError(f"required checksum sidecar {sidecar.name} is missing", where=where)
        digest = verify_checksum(path, sidecar)
    else:
        digest = sha256_of(path)

    market = market or market_from_path(path.resolve())
    stem = path.name.removesuffix(".zip").removesuffix(".csv").removesuffix(".json")
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInputError(f"invalid JSON ({exc})", where=where) from None
        strings, has_header = rest_rows_to_strings(rows, where=where), False
        market = market or "spot"  # /api/v3/klines dumps are spot; pass market for others
    else:
        strings, has_header = parse_csv_bytes(_csv_bytes(path), where=where)
        if market is None:
            if has_header:
                raise BadInputError(
                    "file has a futures-style header but its path names no market (spot, futures/um, futures/cm); "
                    "pass the market explicitly",
                    where=where,
                )
            market = "spot"  # data.binance.vision spot files are the header-less ones
    symbol, interval, scope = _scope_from_name(stem, market, symbol, interval)
    frame = klines_from_binance_strings(strings, market=market, symbol=symbol, interval=interval, where=where)
    if scope is None:
        if frame.height == 0:
            raise BadInputError("file holds no klines and its name gives no date range", where=where)
        step = interval_timedelta(interval)
        first, last = frame["open_time"].min(), frame["open_time"].max()
        if not isinstance(first, datetime) or not isinstance(last, datetime):  # open_time is a UTC Datetime column
            raise BadInputError(f"open_time holds {type(first).__name__}, not datetimes", where=where)
        scope = LoadScope(market, interval, (symbol,), first, last + step)
    return KlineFile(path=path, frame=frame, scope=scope, sha256=digest, has_header=has_header)

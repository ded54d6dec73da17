"""The archive landing folder: Binance archive files dropped there are imported (checksum-verified when a
.CHECKSUM sidecar is beside them) and moved aside: to ``imported/`` when loaded, to ``quarantine/`` with a
``.reason.txt`` when rejected. A file is never loaded partially and never left where it would be retried."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg

from fks_pipelines.lib.db.raw import replace_days, replace_klines
from fks_pipelines.lib.errors import FksError
from fks_pipelines.lib.sources.files import read_kline_file
from fks_pipelines.lib.sources.imports import whole_days

DATA_SUFFIXES = (".zip", ".csv")


def landed_files(landing: Path) -> list[Path]:
    """Data files waiting in the landing folder (its top level; sidecars travel with their file)."""
    if not landing.is_dir():
        return []
    return sorted(p for p in landing.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)


@dataclass(frozen=True)
class LandingResult:
    path: Path
    moved_to: Path
    rows: int
    error: str | None


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for item in (path, path.with_name(path.name + ".CHECKSUM")):
        if item.exists():
            shutil.move(str(item), folder / item.name)
    return folder / path.name


def import_landed_file(conn: psycopg.Connection, path: Path, landing: Path) -> LandingResult:
    try:
        parsed = read_kline_file(path)
        if whole_days(parsed.scope):  # a daily or monthly archive: one transaction per UTC day
            rows = sum(
                r.rows_loaded
                for r in replace_days(
                    conn, parsed.frame, parsed.scope, source="landing", detail=path.name, checksum=parsed.sha256
                )
            )
        else:
            rows = replace_klines(
                conn, parsed.frame, parsed.scope, source="landing", detail=str(path.name), checksum=parsed.sha256
            ).rows_loaded
    except FksError as e:
        moved = _move(path, landing / "quarantine")
        moved.with_name(moved.name + ".reason.txt").write_text(f"{e}\n")
        return LandingResult(path, moved, 0, str(e))
    return LandingResult(path, _move(path, landing / "imported"), rows, None)

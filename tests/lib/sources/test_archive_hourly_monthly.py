"""data.binance.vision 1h archives (spot, USD-M; ms and µs timestamps) and monthly files: loaded one transaction
per UTC day, and fetched monthly for months that are over, from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, date, datetime

import pytest

from fks_pipelines.lib.db.connect import migrate
from fks_pipelines.lib.db.raw import read_klines
from fks_pipelines.lib.klines import LoadScope
from fks_pipelines.lib.sources import ArchiveSource
from fks_pipelines.lib.sources.binance_archive import monthly_archive_path
from fks_pipelines.lib.sources.files import read_kline_file
from fks_pipelines.lib.sources.imports import load_kline_file
from tests.support import Reply, Request, ScriptedServer

HOURLY = [
    ("spot/BTCUSDT-1h-2022-09-07.zip", "spot", "BTCUSDT"),
    ("spot/BTCUSDT-1h-2022-09-08.zip", "spot", "BTCUSDT"),
    ("spot/BTCUSDT-1h-2025-11-04.zip", "spot", "BTCUSDT"),  # microsecond timestamps
    ("futures-um/ETHUSDT-1h-2022-08-24.zip", "usdm", "ETHUSDT"),
    ("futures-um/ETHUSDT-1h-2022-08-25.zip", "usdm", "ETHUSDT"),
]


def csv_member(path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(archive.namelist()[0])


def monthly_zip(shared_data, tmp_path) -> bytes:
    """A monthly archive (BTCUSDT-1h-2022-09.zip) built from the two real daily files' rows."""
    rows = b"".join(
        csv_member(shared_data / "spot" / f"BTCUSDT-1h-2022-09-0{d}.zip").rstrip(b"\n") + b"\n" for d in (7, 8)
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("BTCUSDT-1h-2022-09.csv", rows)
    return buf.getvalue()


@pytest.mark.parametrize(("name", "market", "symbol"), HOURLY)
def test_hourly_archives_load_as_one_day(conn, shared_data, name, market, symbol):
    migrate(conn)
    parsed = read_kline_file(shared_data / name)
    assert (parsed.scope.market, parsed.scope.interval, parsed.scope.symbols) == (market, "1h", (symbol,))
    load = load_kline_file(conn, parsed)
    assert (load.rows, load.days) == (24, 1)
    assert read_klines(conn, parsed.scope).equals(parsed.frame)
    assert load_kline_file(conn, parsed).rows == 24  # idempotent


def test_a_monthly_file_loads_one_transaction_per_day(conn, shared_data, tmp_path):
    migrate(conn)
    path = tmp_path / "spot" / "BTCUSDT-1h-2022-09.zip"
    path.parent.mkdir()
    path.write_bytes(monthly_zip(shared_data, tmp_path))
    parsed = read_kline_file(path)
    assert parsed.scope.start == datetime(2022, 9, 1, tzinfo=UTC) and parsed.scope.end == datetime(
        2022, 10, 1, tzinfo=UTC
    )
    load = load_kline_file(conn, parsed)
    assert (load.rows, load.days) == (48, 30)
    logged = conn.execute(
        "SELECT range_start::date, rows_loaded FROM raw.ingest_log WHERE status = 'loaded' AND rows_loaded > 0"
        " ORDER BY 1"
    ).fetchall()
    assert logged == [(date(2022, 9, 7), 24), (date(2022, 9, 8), 24)]
    assert conn.execute("SELECT count(*) FROM raw.ingest_log WHERE status = 'loaded'").fetchone()[0] == 30
    daily = [read_kline_file(shared_data / "spot" / f"BTCUSDT-1h-2022-09-0{d}.zip").frame for d in (7, 8)]
    held = read_klines(conn, LoadScope("spot", "1h", ("BTCUSDT",), parsed.scope.start, parsed.scope.end))
    assert held.equals(daily[0].vstack(daily[1]))


def archive_server(files: dict[str, bytes]):
    def handler(request: Request) -> Reply:
        path = request.path.lstrip("/")
        if path in files:
            return Reply(200, files[path])
        if path.endswith(".CHECKSUM") and path.removesuffix(".CHECKSUM") in files:
            name = path.rsplit("/", 1)[-1].removesuffix(".CHECKSUM")
            return Reply(200, f"{hashlib.sha256(files[path.removesuffix('.CHECKSUM')]).hexdigest()}  {name}".encode())
        return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>")

    return ScriptedServer(handler)


def test_a_past_month_is_fetched_as_one_monthly_file(shared_data, tmp_path):
    month = monthly_archive_path("spot", "BTCUSDT", "1h", 2022, 9)
    assert month == "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2022-09.zip"
    with archive_server({month: monthly_zip(shared_data, tmp_path)}) as server:
        source = ArchiveSource(tmp_path / "cache", server.url, now=lambda: datetime(2024, 1, 1, tzinfo=UTC))
        first = source.fetch_day("spot", ["BTCUSDT"], "1h", date(2022, 9, 7))
        second = source.fetch_day("spot", ["BTCUSDT"], "1h", date(2022, 9, 8))
        paths = [r.path for r in server.requests]
    assert paths == [f"/{month}", f"/{month}.CHECKSUM"]  # one download serves every day of the month
    expected = [read_kline_file(shared_data / "spot" / f"BTCUSDT-1h-2022-09-0{d}.zip").frame for d in (7, 8)]
    assert first.frame.equals(expected[0]) and second.frame.equals(expected[1])


def test_the_current_month_and_an_unpublished_month_come_from_daily_files(shared_data, tmp_path):
    daily = "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2022-09-07.zip"
    files = {daily: (shared_data / "spot" / "BTCUSDT-1h-2022-09-07.zip").read_bytes()}
    with archive_server(files) as server:
        current = ArchiveSource(tmp_path / "a", server.url, now=lambda: datetime(2022, 9, 20, tzinfo=UTC))
        assert current.fetch_day("spot", ["BTCUSDT"], "1h", date(2022, 9, 7)).frame.height == 24
        assert [r.path for r in server.requests] == [f"/{daily}", f"/{daily}.CHECKSUM"]
        later = ArchiveSource(tmp_path / "b", server.url, now=lambda: datetime(2022, 10, 2, tzinfo=UTC))
        assert later.fetch_day("spot", ["BTCUSDT"], "1h", date(2022, 9, 7)).frame.height == 24
        assert "/monthly/" in server.requests[2].path and "/daily/" in server.requests[3].path

"""Downloading data.binance.vision archives from a real HTTP server on 127.0.0.1 serving the real files."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fks_pipelines.lib.errors import BadInputError, ChecksumMismatchError
from fks_pipelines.lib.sources import ArchiveSource
from fks_pipelines.lib.sources.binance_archive import BinanceArchiveClient, archive_path
from tests.support import Reply, Request, ScriptedServer


def archive_server(shared_data, *, corrupt: bool = False):
    spot = shared_data / "spot"

    def handler(request: Request) -> Reply:
        name = request.path.rsplit("/", 1)[-1]
        if not request.path.startswith("/data/spot/daily/klines/BTCUSDT/1m/") or not (spot / name).exists():
            return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
        body = (spot / name).read_bytes()
        if corrupt and name.endswith(".zip"):
            body = body[:-10] + b"0123456789"
        return Reply(200, body)

    return ScriptedServer(handler)


def test_archive_path_follows_binance_layout():
    assert archive_path("usdm", "ETHUSDT", "1h", date(2022, 8, 24)) == (
        "data/futures/um/daily/klines/ETHUSDT/1h/ETHUSDT-1h-2022-08-24.zip"
    )


def test_downloads_verifies_and_caches(shared_data, tmp_path):
    with archive_server(shared_data) as server:
        # January 2020 is the current month: its days are daily files (a month that is over: its monthly file).
        source = ArchiveSource(tmp_path / "cache", server.url, now=lambda: datetime(2020, 1, 10, tzinfo=UTC))
        batch = source.fetch_day("spot", ["BTCUSDT"], "1m", date(2020, 1, 3))
        assert batch.frame.height == 1440
        assert batch.checksum == "9623b3d0c487715f410caee51fbce2474375ece85c854a0682c90b3dad0bf8be"
        requests_after_first = len(server.requests)
        source.fetch_day("spot", ["BTCUSDT"], "1m", date(2020, 1, 3))
        assert len(server.requests) == requests_after_first == 2  # zip + CHECKSUM, then served from the cache
    assert (tmp_path / "cache" / archive_path("spot", "BTCUSDT", "1m", date(2020, 1, 3))).exists()


def test_corrupted_download_is_rejected_and_not_kept(shared_data, tmp_path):
    with archive_server(shared_data, corrupt=True) as server:
        client = BinanceArchiveClient(tmp_path / "cache", server.url)
        with pytest.raises(ChecksumMismatchError):
            client.fetch_day("spot", "BTCUSDT", "1m", date(2020, 1, 1))
    assert not (tmp_path / "cache" / archive_path("spot", "BTCUSDT", "1m", date(2020, 1, 1))).exists()


def test_missing_archive_is_a_clear_error(shared_data, tmp_path):
    with archive_server(shared_data) as server:
        client = BinanceArchiveClient(tmp_path / "cache", server.url)
        with pytest.raises(BadInputError, match="HTTP 404"):
            client.fetch_day("spot", "BTCUSDT", "1m", date(2021, 6, 1))

"""data.binance.vision kline archives, daily and monthly: download, verify the ``.CHECKSUM`` sha256, parse.

A month that is over is one monthly file (``data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2022-09.zip``), so a
backfill of years downloads a file per month, not per day; the current month (and a past month whose file
Binance has not published yet) comes from the daily files.

Files are cached under ``cache_dir`` with Binance's own path layout, so a re-run does not download again
and an analyst can find the exact bytes a partition was loaded from. A file that fails its checksum is
deleted and the load fails: we never load unverified archive bytes fetched from the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx

from fks_pipelines.lib.errors import BadInputError, SourceUnavailableError
from fks_pipelines.lib.sources.files import KlineFile, read_kline_file
from fks_pipelines.lib.symbols import check_symbol

DEFAULT_ARCHIVE_URL = "https://data.binance.vision"
_MARKET_PATHS = {"spot": "spot", "usdm": "futures/um", "coinm": "futures/cm"}


def archive_path(market: str, symbol: str, interval: str, day: date) -> str:
    """Binance's path of one daily archive, e.g. ``data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip``."""
    if market not in _MARKET_PATHS:
        raise BadInputError(f"no Binance archive for market {market!r}")
    check_symbol(symbol, where="binance_archive source")  # it becomes part of a URL and a cache path
    name = f"{symbol}-{interval}-{day.isoformat()}.zip"
    return f"data/{_MARKET_PATHS[market]}/daily/klines/{symbol}/{interval}/{name}"


def monthly_archive_path(market: str, symbol: str, interval: str, year: int, month: int) -> str:
    """Binance's path of one monthly archive, e.g. ``data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2022-09.zip``."""
    if market not in _MARKET_PATHS:
        raise BadInputError(f"no Binance archive for market {market!r}")
    check_symbol(symbol, where="binance_archive source")
    name = f"{symbol}-{interval}-{year:04d}-{month:02d}.zip"
    return f"data/{_MARKET_PATHS[market]}/monthly/klines/{symbol}/{interval}/{name}"


class ArchiveNotPublishedError(BadInputError):
    """data.binance.vision answered 404: no archive for that symbol, interval and day (or month)."""


@dataclass
class BinanceArchiveClient:
    cache_dir: Path
    base_url: str = DEFAULT_ARCHIVE_URL
    timeout_s: float = 60.0
    http: httpx.Client | None = None
    _own_http: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir)
        self.base_url = self.base_url.rstrip("/")
        if self.http is None:
            self.http = httpx.Client(timeout=self.timeout_s, follow_redirects=True)
            self._own_http = True

    def close(self) -> None:
        if self._own_http and self.http is not None:
            self.http.close()

    def _download(self, relative: str) -> Path:
        target = self.cache_dir / relative
        if target.exists():
            return target
        url = f"{self.base_url}/{relative}"
        if self.http is None:  # set by __post_init__
            raise RuntimeError("BinanceArchiveClient has no HTTP client")
        try:
            response = self.http.get(url)
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(f"GET {url} failed: {exc}") from None
        if response.status_code == 404:
            raise ArchiveNotPublishedError(
                "not published (HTTP 404): no archive for that symbol, interval and day", where=f"GET {url}"
            )
        if response.status_code != 200:
            raise SourceUnavailableError(f"GET {url} answered HTTP {response.status_code}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(response.content)
        partial.replace(target)
        return target

    def fetch_day(self, market: str, symbol: str, interval: str, day: date) -> KlineFile:
        return self._fetch(archive_path(market, symbol, interval, day), market, symbol, interval)

    def fetch_month(self, market: str, symbol: str, interval: str, year: int, month: int) -> KlineFile:
        return self._fetch(monthly_archive_path(market, symbol, interval, year, month), market, symbol, interval)

    def _fetch(self, relative: str, market: str, symbol: str, interval: str) -> KlineFile:
        path = self._download(relative)
        self._download(relative + ".CHECKSUM")
        try:
            return read_kline_file(path, market=market, symbol=symbol, interval=interval, require_checksum=True)
        except BadInputError:
            # Never keep bytes that failed verification or parsing: the next run downloads afresh.
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".CHECKSUM").unlink(missing_ok=True)
            raise

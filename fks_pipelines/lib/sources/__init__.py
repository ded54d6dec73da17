"""Market-data sources behind one interface: give me validated klines for these symbols on this UTC day.

Four sources, one shape (``klines.KLINE_SCHEMA``):
- ``sample``: the deterministic offline generator (the embedded default; no network);
- ``binance_rest``: Binance's REST klines (spot, USD-M futures);
- ``binance_archive``: data.binance.vision daily archives, checksum-verified;
- local files (``files.read_kline_file``), used by ``fks ingest archive`` and the landing folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import polars as pl

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.sources.binance_archive import DEFAULT_ARCHIVE_URL, BinanceArchiveClient
from fks_pipelines.lib.sources.binance_rest import DEFAULT_MAX_RETRY_AFTER_S, BinanceRestClient
from fks_pipelines.lib.sources.frame import ProvenAbsent, check_market, empty_klines
from fks_pipelines.lib.sources.sample import check_gap_rate, sample_day

SOURCE_KINDS = ("sample", "binance_rest", "binance_archive")


@dataclass(frozen=True)
class DayBatch:
    """What a source returned for one day: the rows, where they came from (for the ingest log), and the
    source's proof of bars that do not exist (so the loader may drop such bars it holds)."""

    frame: pl.DataFrame
    detail: str
    checksum: str | None = None
    absent: tuple[ProvenAbsent, ...] = ()


class KlineSource(Protocol):
    name: str

    def fetch_day(self, market: str, symbols: Sequence[str], interval: str, day: date) -> DayBatch: ...


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


@dataclass
class SampleSource:
    seed: int = 42
    gap_rate: float = 0.0
    name: str = "sample"

    def __post_init__(self) -> None:
        check_gap_rate(self.gap_rate)

    def fetch_day(self, market: str, symbols: Sequence[str], interval: str, day: date) -> DayBatch:
        if market != "spot" or interval != "1m":
            raise BadInputError(f"the sample source generates spot 1m bars only, not {market} {interval}")
        frames = [sample_day(s, day, seed=self.seed, gap_rate=self.gap_rate) for s in symbols]
        frame = pl.concat(frames) if frames else empty_klines()
        return DayBatch(frame, f"sample seed={self.seed} gap_rate={self.gap_rate} day={day}")


@dataclass
class RestSource:
    client_factory: Callable[[str], BinanceRestClient]
    name: str = "binance_rest"

    def fetch_day(self, market: str, symbols: Sequence[str], interval: str, day: date) -> DayBatch:
        start, end = _day_bounds(day)
        client = self.client_factory(market)
        frames, absent = [], []
        try:
            for symbol in symbols:
                frame = client.fetch(symbol, interval, start, end)
                frames.append(frame)
                if frame.height == 0 or frame["open_time"][0] > start:  # pages come in ascending order
                    absent += _listed_later(client, symbol, interval, start, end)
        finally:
            client.close()
        frame = pl.concat(frames) if frames else empty_klines()
        detail = f"{client.base_url}{client.api.path} {interval} {day} ({client.requests_made} requests)"
        return DayBatch(frame, detail, absent=tuple(absent))


def _listed_later(
    client: BinanceRestClient, symbol: str, interval: str, start: datetime, end: datetime
) -> list[ProvenAbsent]:
    """Binance's proof that a day's first bars do not exist: the first bar it has for the symbol opens after
    ``start`` (listed that day or later). An empty answer proves nothing."""
    first = client.first_open_time(symbol, interval)
    if first is None or first <= start:
        return []
    evidence = f"the first {interval} bar Binance has for {symbol} opens at {first.isoformat()}"
    return [ProvenAbsent(symbol, start, min(first, end), evidence)]


@dataclass
class ArchiveSource:
    cache_dir: Path
    base_url: str = DEFAULT_ARCHIVE_URL
    name: str = "binance_archive"

    def fetch_day(self, market: str, symbols: Sequence[str], interval: str, day: date) -> DayBatch:
        client = BinanceArchiveClient(self.cache_dir, self.base_url)
        try:
            files = [client.fetch_day(market, s, interval, day) for s in symbols]
        finally:
            client.close()
        frame = pl.concat([f.frame for f in files]) if files else empty_klines()
        checksum = ",".join(f.sha256 for f in files)
        return DayBatch(frame, "; ".join(str(f.path) for f in files), checksum)


def build_source(
    kind: str,
    *,
    sample_seed: int = 42,
    sample_gap_rate: float = 0.0,
    rest_base_url: str | None = None,
    archive_base_url: str | None = None,
    archive_cache_dir: str | Path = ".fks/archive",
    on_page: Callable[[str, int], None] | None = None,
    rest_max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
) -> KlineSource:
    if kind == "sample":
        return SampleSource(seed=sample_seed, gap_rate=sample_gap_rate)
    if kind == "binance_rest":
        return RestSource(
            lambda market: BinanceRestClient(
                market=check_market(market),
                base_url=rest_base_url,
                on_page=on_page,
                max_retry_after_s=rest_max_retry_after_s,
            )
        )
    if kind == "binance_archive":
        return ArchiveSource(Path(archive_cache_dir), archive_base_url or DEFAULT_ARCHIVE_URL)
    raise BadInputError(f"unknown source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")

"""Market-data sources behind one interface: give me validated klines for these symbols on this UTC day.

Five sources, one shape (``klines.KLINE_SCHEMA``):
- ``sample``: the deterministic offline generator (the embedded default; no network);
- ``binance_rest``: Binance's REST klines (spot, USD-M futures);
- ``binance_archive``: data.binance.vision daily archives, checksum-verified;
- ``freqtrade``: a freqtrade data directory (default: the real BTC/ETH history bundled in the package);
- local files (``files.read_kline_file``), used by ``fks ingest archive`` and the landing folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import polars as pl

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.klines import ProvenAbsent, check_market, empty_klines
from fks_pipelines.lib.sources.binance_archive import (
    DEFAULT_ARCHIVE_URL,
    ArchiveNotPublishedError,
    BinanceArchiveClient,
)
from fks_pipelines.lib.sources.binance_rest import DEFAULT_MAX_RETRY_AFTER_S, BinanceRestClient
from fks_pipelines.lib.sources.files import KlineFile
from fks_pipelines.lib.sources.freqtrade import (
    FreqtradeFile,
    exchange_gaps,
    find_freqtrade_files,
    read_freqtrade_file,
)
from fks_pipelines.lib.sources.sample import check_gap_rate, sample_day

SOURCE_KINDS = ("sample", "binance_rest", "binance_archive", "freqtrade")
BUNDLED_FREQTRADE_DIR = Path(__file__).resolve().parents[2] / "data" / "freqtrade"


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
    """data.binance.vision archives: a day of a month that is over is cut from the monthly file (downloaded and
    parsed once per instance), a day of the current month (or of a month whose file is not published yet) is
    its daily file."""

    cache_dir: Path
    base_url: str = DEFAULT_ARCHIVE_URL
    name: str = "binance_archive"
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    _months: dict[tuple[str, str, str, int, int], KlineFile | None] = field(
        default_factory=dict, init=False, repr=False
    )

    def _day_file(self, client: BinanceArchiveClient, market: str, symbol: str, interval: str, day: date) -> KlineFile:
        today = self.now().date()
        if (day.year, day.month) < (today.year, today.month):
            key = (market, symbol, interval, day.year, day.month)
            if key not in self._months:
                try:
                    self._months[key] = client.fetch_month(market, symbol, interval, day.year, day.month)
                except ArchiveNotPublishedError:
                    self._months[key] = None  # not published yet: the daily files
            month = self._months[key]
            if month is not None:
                start, end = _day_bounds(day)
                frame = month.frame.filter((pl.col("open_time") >= start) & (pl.col("open_time") < end))
                return replace(month, frame=frame)
        return client.fetch_day(market, symbol, interval, day)

    def fetch_day(self, market: str, symbols: Sequence[str], interval: str, day: date) -> DayBatch:
        client = BinanceArchiveClient(self.cache_dir, self.base_url)
        try:
            files = [self._day_file(client, market, s, interval, day) for s in symbols]
        finally:
            client.close()
        frame = pl.concat([f.frame for f in files]) if files else empty_klines()
        checksum = ",".join(f.sha256 for f in files)
        return DayBatch(frame, "; ".join(f"{f.path} {day}" for f in files), checksum)


@dataclass
class FreqtradeSource:
    """Bars from a freqtrade data directory (``user_data/data/binance``: spot files at its top, USD-M futures in
    ``futures/``). Each file is parsed and validated once per instance (one asset run), then served day by day.

    A day outside a file's range gets no rows. Inside it, the file is the record of what the exchange published:
    a bar it lacks does not exist (Binance's outages), so the day's missing bars come with a ``ProvenAbsent``,
    and a re-load of a day with a real gap is neither refused nor filled."""

    data_dir: Path = BUNDLED_FREQTRADE_DIR
    name: str = "freqtrade"
    _files: dict[tuple[str, str, str], FreqtradeFile | None] = field(default_factory=dict, init=False, repr=False)
    _file_gaps: dict[Path, list[ProvenAbsent]] = field(default_factory=dict, init=False, repr=False)

    def _file(self, market: str, symbol: str, interval: str) -> FreqtradeFile | None:
        key = (market, symbol, interval)
        if key not in self._files:
            found, _ = find_freqtrade_files(Path(self.data_dir), symbols=[symbol], intervals=[interval])
            paths = sorted(path for path, name in found if name.market == market)
            if len(paths) > 1:
                shown = ", ".join(p.name for p in paths)
                raise BadInputError(
                    f"{len(paths)} files hold {market} {symbol} {interval} ({shown}); keep one",
                    where=str(self.data_dir),
                )
            self._files[key] = read_freqtrade_file(paths[0]) if paths else None
        return self._files[key]

    def _gaps(self, file: FreqtradeFile) -> list[ProvenAbsent]:
        if file.path not in self._file_gaps:
            self._file_gaps[file.path] = exchange_gaps(file)
        return self._file_gaps[file.path]

    def fetch_day(self, market: str, symbols: Sequence[str], interval: str, day: date) -> DayBatch:
        start, end = _day_bounds(day)
        frames, absent, details = [], [], []
        for symbol in symbols:
            file = self._file(market, symbol, interval)
            if file is None:
                details.append(f"{symbol}: no {market} {interval} freqtrade file in {self.data_dir}")
                continue
            part = file.frame.filter((pl.col("open_time") >= start) & (pl.col("open_time") < end))
            frames.append(part)
            details.append(f"{file.path} {day}")
            absent += [gap for gap in self._gaps(file) if gap.start < end and gap.end > start]
        frame = pl.concat(frames) if frames else empty_klines()
        return DayBatch(frame, "; ".join(details), absent=tuple(absent))


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
    freqtrade_dir: str | Path | None = None,
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
    if kind == "freqtrade":
        return FreqtradeSource(Path(freqtrade_dir) if freqtrade_dir else BUNDLED_FREQTRADE_DIR)
    raise BadInputError(f"unknown source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")

"""`fks ingest`: raw klines into raw.binance_klines through the Dagster asset's transactional load path, from the
offline sample, Binance's REST API, data.binance.vision files or a freqtrade data directory."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fks_pipelines.cli.options import day_range_options, force_option, json_option, symbols_option
from fks_pipelines.cli.types import DAYS, GapRate, Interval, Intervals
from fks_pipelines.lib.db.platform import database_urls
from fks_pipelines.lib.errors import FksError
from fks_pipelines.settings import Settings

if TYPE_CHECKING:  # the loaders import polars and the stores: only when a command runs
    import psycopg

    from fks_pipelines.lib.db.raw import SymbolSummary
    from fks_pipelines.lib.klines import LoadScope
    from fks_pipelines.lib.sources import KlineSource

    Summaries = dict[str, list[SymbolSummary]]  # by symbol (or market:symbol:interval), one per scope loaded


@click.group()
def ingest() -> None:
    """Load raw klines into raw.binance_klines (the same transactional path as the Dagster asset)."""


@ingest.command("sample")
@click.option("--days", type=DAYS, default=30, show_default=True, help="How many complete UTC days, ending yesterday.")
@symbols_option()
@click.option("--seed", default=None, type=int, help="Generator seed (default FKS_SAMPLE_SEED or 42).")
@click.option(
    "--gap-rate", type=GapRate(), default=0.0, show_default=True, help="Share of minutes to leave out, in short runs."
)
@force_option()
def ingest_sample(days: int, symbols: list[str] | None, seed: int | None, gap_rate: float, force: bool) -> None:
    """Generate the deterministic offline sample (no network) and load it."""
    from fks_pipelines.lib.sources import SampleSource

    settings = Settings.from_env()
    end = datetime.now(UTC).date() - timedelta(days=1)
    source = SampleSource(seed=settings.sample_seed if seed is None else seed, gap_rate=gap_rate)
    _load_days(
        settings, source, "spot", "1m", symbols or list(settings.symbols), end - timedelta(days=days - 1), end, force
    )


@ingest.command("binance")
@symbols_option()
@click.option("--interval", type=Interval(), default="1m", show_default=True)
@click.option("--market", type=click.Choice(["spot", "usdm"]), default="spot", show_default=True)
@day_range_options("First UTC day, e.g. 2024-01-01.", "Last UTC day (inclusive), e.g. 2024-01-31.")
@force_option()
def ingest_binance(symbols: list[str] | None, interval: str, market: str, start_: date, end: date, force: bool) -> None:
    """Fetch klines from Binance's REST API (rate-limit aware) and load them, one UTC day at a time."""
    from fks_pipelines.lib.sources import build_source

    settings = Settings.from_env()
    pages = {"n": 0}

    def on_page(symbol: str, rows: int) -> None:
        pages["n"] += 1
        click.echo(f"    {symbol}: page {pages['n']} ({rows} bars)", err=True)

    source = build_source(
        "binance_rest",
        rest_base_url=settings.rest_base_url,
        on_page=on_page,
        rest_max_retry_after_s=settings.binance_max_retry_after_s,
    )
    _load_days(settings, source, market, interval, symbols or list(settings.symbols), start_, end, force)


def _load_days(
    settings: Settings,
    source: KlineSource,
    market: str,
    interval: str,
    symbols: list[str],
    start: date,
    end: date,
    force: bool,
) -> None:
    """Load each day [start, end] with a progress line each, then the summary. A day that has not ended: exit 2
    before anything starts or is fetched; a refused replacement: exit 1."""
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.sources.imports import check_days_ended, load_source_days

    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    check_days_ended(market, interval, symbols, days)

    def on_day(i: int, day: date, rows: int, seconds: float) -> None:
        click.echo(f"  [{i}/{len(days)}] {day}  {rows:>7} rows  ({seconds:.2f}s)", err=True)

    data_url, _ = database_urls(settings)
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        began = time.perf_counter()
        scopes = load_source_days(conn, source, market, interval, symbols, days, force=force, on_day=on_day)
        summaries = _summaries(conn, scopes)
        elapsed = time.perf_counter() - began
    _print_summary(summaries, elapsed)


@ingest.command("archive")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--market", type=click.Choice(["spot", "usdm", "coinm"]), help="Override the market read from the path.")
@click.option("--symbol", help="Symbol, for files whose name does not say it (REST JSON dumps).")
@click.option("--interval", type=Interval(), help="Interval, for files whose name does not say it.")
@force_option()
def ingest_archive(
    paths: tuple[Path, ...], market: str | None, symbol: str | None, interval: str | None, force: bool
) -> None:
    """Load data.binance.vision files (.zip/.csv, .CHECKSUM verified when present) or REST JSON dumps.

    Each file replaces exactly the day (or month) its name covers, one transaction per UTC day; a bad file is
    rejected with the reason and nothing of it is written; the other files still load.
    """
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.sources.imports import kline_files, load_binance_file

    files = kline_files(paths)
    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    failures = 0
    loaded: list[LoadScope] = []
    began = time.perf_counter()
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        for i, path in enumerate(files, start=1):
            try:
                rows, scope = load_binance_file(
                    conn, path, market=market, symbol=symbol, interval=interval, force=force
                )
            except FksError as exc:
                failures += 1
                click.echo(f"  [{i}/{len(files)}] REJECTED {exc}", err=True)
                continue
            click.echo(f"  [{i}/{len(files)}] {path.name}: {rows} rows ({scope.describe()})", err=True)
            loaded.append(scope)
        summaries = _summaries(conn, loaded, series=True)
    _print_summary(summaries, time.perf_counter() - began)
    if failures:
        raise FksError(f"{failures} of {len(files)} file(s) rejected (see above); nothing of them was written")


@ingest.command("freqtrade")
@click.argument("path", type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option(
    "--market", type=click.Choice(["spot", "usdm", "coinm"]), help="Override the market the file names imply."
)
@symbols_option("Only these symbols, comma-separated (BTCUSDT for the pair BTC/USDT).")
@click.option("--timeframes", type=Intervals(), help="Only these timeframes, comma-separated (1h,1d).")
@force_option()
@json_option("One JSON summary line on stdout (progress stays on stderr).")
def ingest_freqtrade(
    path: Path,
    market: str | None,
    symbols: list[str] | None,
    timeframes: list[str] | None,
    force: bool,
    as_json: bool,
) -> None:
    """Load freqtrade OHLCV files: one file or a data directory (user_data/data/binance, futures/ included).

    json, json.gz, feather and parquet; BTC_USDT-1h.json is spot BTCUSDT, futures/BTC_USDT_USDT-1h-futures.feather
    USD-M BTCUSDT. Every file is validated before anything is written (a bad one: exit 2, nothing written); each
    UTC day is one transaction; quote volume, trades and taker volumes stay NULL (freqtrade does not keep them).
    """
    from fks_pipelines.lib.db.connect import connect, migrate
    from fks_pipelines.lib.sources.imports import FileLoad, import_freqtrade

    settings = Settings.from_env()
    data_url, _ = database_urls(settings)

    def on_file(i: int, total: int, load: FileLoad) -> None:
        late = f", {load.left_out_rows} bars of today left for later" if load.left_out_rows else ""
        click.echo(
            f"  [{i}/{total}] {load.path.name}: {load.rows} rows, {load.days} days ({load.seconds:.1f}s{late})",
            err=True,
        )

    began = time.perf_counter()
    with connect(data_url) as conn:
        migrate(conn, settings.timescale())
        click.echo(f"reading {path} ...", err=True)
        result = import_freqtrade(
            conn, path, market=market, symbols=symbols or None, intervals=timeframes, force=force, on_file=on_file
        )
        for skipped in result.skipped:
            click.echo(f"  skipped {skipped.path}: {skipped.reason}", err=True)
        summaries = _summaries(conn, [load.scope for load in result.loads], series=True)
    elapsed = time.perf_counter() - began
    if not as_json:
        _print_summary(summaries, elapsed)
        return
    files = []
    for load in result.loads:
        held = [s for symbol in load.scope.symbols for s in summaries.get(_series(load.scope, symbol), [])]
        files.append(load.as_json() | {"missing_bars": sum(s.missing_bars for s in held)})
    click.echo(
        json.dumps(
            {
                "files": files,
                "skipped": [{"path": str(s.path), "reason": s.reason} for s in result.skipped],
                "rows": sum(load.rows for load in result.loads),
                "days": sum(load.days for load in result.loads),
                "seconds": round(elapsed, 3),
            }
        )
    )


def _series(scope: LoadScope, symbol: str) -> str:
    """A row label naming the market and interval too (``spot:BTCUSDT:1h``), for loads that mix them."""
    return f"{scope.market}:{symbol}:{scope.interval}"


def _summaries(conn: psycopg.Connection, scopes: list[LoadScope], *, series: bool = False) -> Summaries:
    """What raw.binance_klines now holds in each scope loaded (rows, first and last bar, gaps), by symbol (or by
    ``market:symbol:interval`` with ``series``)."""
    from fks_pipelines.lib.db.raw import scope_summary

    out: Summaries = {}
    for scope in scopes:
        for s in scope_summary(conn, scope, max_ranges=5):
            out.setdefault(_series(scope, s.symbol) if series else s.symbol, []).append(s)
    return out


def _print_summary(summaries: Summaries, elapsed: float) -> None:
    click.echo(f"\n{'symbol':<14}{'rows':>10}  {'first bar (UTC)':<18}{'last bar (UTC)':<18}{'missing':>8}")
    for symbol, parts in summaries.items():
        rows = sum(p.rows for p in parts)
        firsts = [p.first_bar for p in parts if p.first_bar]
        lasts = [p.last_bar for p in parts if p.last_bar]
        missing = sum(p.missing_bars for p in parts)
        first = f"{min(firsts):%Y-%m-%d %H:%M}" if firsts else "-"
        last = f"{max(lasts):%Y-%m-%d %H:%M}" if lasts else "-"
        click.echo(f"{symbol:<14}{rows:>10}  {first:<18}{last:<18}{missing:>8}")
        for p in parts:
            for a, b in p.missing_ranges:
                click.echo(f"    gap {a:%Y-%m-%d %H:%M} .. {b:%H:%M}")
    click.echo(f"done in {elapsed:.1f}s")

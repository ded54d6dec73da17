"""freqtrade OHLCV files in each of freqtrade's formats, written here the way freqtrade writes them (its
datahandlers: ``to_json(orient="values")`` with ms times, the same gzip-compressed, ``to_feather(compression="lz4")``
and ``to_parquet``), read into kline frames equal to the shared real file row for row; malformed files refused
in one line naming the file and the row."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.sources.freqtrade import (
    find_freqtrade_files,
    pair_to_symbol,
    parse_name,
    read_freqtrade_file,
    split_days,
)

COLUMNS = ["date", "open", "high", "low", "close", "volume"]


def shared_rows(shared_data: Path, name: str = "BTC_USDT-1d.json") -> list[list]:
    return json.loads((shared_data / "freqtrade" / name).read_text(), parse_float=Decimal)


def freqtrade_dataframe(rows: list[list]) -> pd.DataFrame:
    """The pandas frame freqtrade keeps in memory: a UTC datetime ``date`` and float columns."""
    df = pd.DataFrame([[r[0], *map(float, r[1:])] for r in rows], columns=COLUMNS)
    df["date"] = pd.to_datetime(df["date"], unit="ms", utc=True)
    return df


def write_like_freqtrade(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt in ("json", "jsongz"):
        out = df.copy()
        out["date"] = out["date"].dt.as_unit("ms").astype("int64")
        out.reset_index(drop=True).loc[:, COLUMNS].to_json(
            path, orient="values", compression="gzip" if fmt == "jsongz" else None
        )
    elif fmt == "feather":
        df.reset_index(drop=True).loc[:, COLUMNS].to_feather(path, compression_level=9, compression="lz4")
    else:
        df.reset_index(drop=True).loc[:, COLUMNS].to_parquet(path)
    return path


def assert_equals_rows(frame: pl.DataFrame, rows: list[list]) -> None:
    assert frame.height == len(rows)
    got = frame.select(pl.col("open_time").dt.epoch("ms"), "open", "high", "low", "close", "volume").rows()
    assert [list(r) for r in got] == rows
    assert (
        frame.select(pl.col("quote_volume", "trades", "taker_buy_base", "taker_buy_quote").null_count()).row(0)
        == (len(rows),) * 4
    )


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("json", ".json"), ("jsongz", ".json.gz"), ("feather", ".feather"), ("parquet", ".parquet")]
)
def test_each_format_reads_to_the_files_rows_exactly(shared_data, tmp_path, fmt, suffix):
    rows = shared_rows(shared_data)
    path = write_like_freqtrade(freqtrade_dataframe(rows), tmp_path / f"BTC_USDT-1d{suffix}", fmt)
    parsed = read_freqtrade_file(path)
    assert (parsed.name.symbol, parsed.name.market, parsed.name.interval, parsed.name.fmt) == (
        "BTCUSDT",
        "spot",
        "1d",
        fmt,
    )
    assert_equals_rows(parsed.frame, rows)
    assert parsed.frame["close_time"][0] == datetime(2017, 8, 17, 23, 59, 59, 999000, tzinfo=UTC)


def test_the_shared_hourly_file_keeps_its_27_exchange_gaps(shared_data):
    rows = shared_rows(shared_data, "BTC_USDT-1h.json")
    parsed = read_freqtrade_file(shared_data / "freqtrade" / "BTC_USDT-1h.json")
    assert_equals_rows(parsed.frame, rows)
    steps = parsed.frame["open_time"].diff().drop_nulls()
    assert int((steps > timedelta(hours=1)).sum()) == 27  # no bar invented
    days = split_days(parsed.frame)
    assert sum(part.height for part in days.values()) == 45_024
    assert days[datetime(2018, 2, 8).date()].height == 1  # Binance's maintenance: one bar, then none till the 9th


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTC_USDT-1h.json", ("BTC/USDT", "BTCUSDT", "1h", "spot", "spot", "json")),
        ("ETH_USDT-1d.json.gz", ("ETH/USDT", "ETHUSDT", "1d", "spot", "spot", "jsongz")),
        ("BTC_USDT_USDT-1h-futures.feather", ("BTC/USDT:USDT", "BTCUSDT", "1h", "futures", "usdm", "feather")),
        ("SOL_USDT-5m.parquet", ("SOL/USDT", "SOLUSDT", "5m", "spot", "spot", "parquet")),
    ],
)
def test_file_names_say_pair_interval_and_market(name, expected):
    parsed = parse_name(Path(name))
    assert (parsed.pair, parsed.symbol, parsed.interval, parsed.candle_type, parsed.market, parsed.fmt) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("BTC_USDT_USDT-8h-funding_rate.feather", "funding_rate candles are not OHLCV"),
        ("BTC_USDT_USDT-1h-mark.feather", "mark candles are not OHLCV"),
        ("BTC_USDT-trades.feather", "not a freqtrade OHLCV file name"),
        ("BTC_USDT-1Mo.json", "timeframe 1Mo is not one of Binance's fixed-length intervals"),
        ("BTC_USD_BTC-1h-futures.feather", "coin-margined futures are not supported"),
    ],
)
def test_other_files_are_refused_with_the_reason(name, reason):
    with pytest.raises(BadInputError, match=reason):
        parse_name(Path(name))


def test_pairs_become_binance_symbols():
    assert pair_to_symbol("BTC/USDT") == pair_to_symbol("BTC/USDT:USDT") == "BTCUSDT"
    with pytest.raises(BadInputError, match="not a freqtrade pair"):
        pair_to_symbol("BTCUSDT")


def _rows_text(rows: list[list]) -> str:
    return json.dumps([[r[0], *map(float, r[1:])] for r in rows])


MALFORMED = {
    "truncated": (lambda text: text[: len(text) // 2], "row 5: invalid or truncated JSON"),
    "string price": (
        lambda text: text.replace("4261.48", '"4261.48"', 1),
        'row 1: field open is "4261.48", not a number',
    ),
    "out of order": (None, "row 3: row out of order"),
    "duplicate": (None, "row 3: duplicate open_time"),
    "five fields": (None, "row 2: expected 6 fields"),
    "high below close": (None, "row 4: high is below max(open, close)"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_one_line_naming_file_and_row(shared_data, tmp_path, case):
    rows = shared_rows(shared_data, "BTC_USDT-1h.json")[:10]
    plain = [[r[0], *map(float, r[1:])] for r in rows]
    edit, message = MALFORMED[case]
    if case == "out of order":
        plain[1], plain[2] = plain[2], plain[1]
    elif case == "duplicate":
        plain[2] = plain[1]
    elif case == "five fields":
        plain[1] = plain[1][:5]
    elif case == "high below close":
        plain[3][2] = plain[3][4] - 1
    text = json.dumps(plain)
    if edit:
        text = edit(text)
    path = tmp_path / "BTC_USDT-1h.json"
    path.write_text(text)
    with pytest.raises(BadInputError) as caught:
        read_freqtrade_file(path)
    assert str(caught.value).startswith(f"{path}, {message}"), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_truncated_gzip_is_refused(shared_data, tmp_path):
    path = tmp_path / "BTC_USDT-1d.json.gz"
    data = gzip.compress((shared_data / "freqtrade" / "BTC_USDT-1d.json").read_bytes())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="not a readable gzip file"):
        read_freqtrade_file(path)


def test_a_bar_that_has_not_closed_is_refused(tmp_path):
    now = datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    start = int(datetime(2024, 1, 1, 11, tzinfo=UTC).timestamp() * 1000)
    path = tmp_path / "BTC_USDT-1h.json"
    path.write_text(json.dumps([[start, 1.0, 2.0, 0.5, 1.5, 3.0], [start + 3_600_000, 1.5, 2.0, 1.0, 1.2, 1.0]]))
    with pytest.raises(BadInputError, match="row 2: bar has not closed yet"):
        read_freqtrade_file(path, now=now)
    assert read_freqtrade_file(path, now=datetime(2024, 1, 1, 13, tzinfo=UTC)).frame.height == 2


def test_a_data_directory_is_walked_with_filters_and_skips(tmp_path, shared_data):
    root = tmp_path / "binance"
    (root / "futures").mkdir(parents=True)
    for name in ("BTC_USDT-1h.json", "BTC_USDT-1d.json", "ETH_USDT-1d.json"):
        (root / name).write_bytes((shared_data / "freqtrade" / name).read_bytes())
    (root / "futures" / "BTC_USDT_USDT-8h-funding_rate.feather").write_bytes(b"")
    found, skipped = find_freqtrade_files(root, symbols=["BTCUSDT"], intervals=["1d"])
    assert [p.name for p, _ in found] == ["BTC_USDT-1d.json"]
    assert [s.path.name for s in skipped] == ["BTC_USDT_USDT-8h-funding_rate.feather"]
    assert "funding_rate candles" in skipped[0].reason

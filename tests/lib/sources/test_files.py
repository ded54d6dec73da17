"""Parsing Binance's layouts, on the real files in ../shared/data/binance and on broken copies of them."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fks_pipelines.lib.errors import BadInputError, ChecksumMismatchError
from fks_pipelines.lib.klines import KLINE_SCHEMA
from fks_pipelines.lib.sources.files import read_kline_file, verify_checksum

UTC = UTC


def test_spot_archive_without_header_milliseconds(shared_data):
    parsed = read_kline_file(shared_data / "spot" / "BTCUSDT-1m-2020-01-01.zip")
    frame = parsed.frame
    assert not parsed.has_header
    assert dict(frame.schema) == KLINE_SCHEMA
    assert frame.height == 1440
    assert parsed.scope.market == "spot" and parsed.scope.symbols == ("BTCUSDT",) and parsed.scope.interval == "1m"
    assert parsed.scope.start == datetime(2020, 1, 1, tzinfo=UTC)
    assert frame["open_time"][0] == datetime(2020, 1, 1, tzinfo=UTC)
    # SOURCES.md: the day opens at 7195.24 and its 1m volumes add up to 16792.388165.
    assert frame["open"][0] == Decimal("7195.24")
    assert frame["volume"].sum() == Decimal("16792.388165")
    assert frame["trades"].sum() == 194010
    assert frame["quote_volume"].sum() == Decimal("121214452.11606228")


def test_checksum_sidecar_is_verified(shared_data):
    path = shared_data / "spot" / "BTCUSDT-1m-2020-01-02.zip"
    assert verify_checksum(path) == "66c701b381d5c2482343ba1c7f600e55d3f5c18f0117ff0789d043a21b62bab6"
    assert read_kline_file(path).sha256 == verify_checksum(path)


def test_checksum_mismatch_is_rejected(shared_data, tmp_path):
    target = tmp_path / "spot" / "BTCUSDT-1m-2020-01-01.zip"
    target.parent.mkdir()
    shutil.copy(shared_data / "spot" / "BTCUSDT-1m-2020-01-01.zip", target)
    # The sidecar of another day: same format, wrong digest.
    digest = (shared_data / "spot" / "BTCUSDT-1m-2020-01-02.zip.CHECKSUM").read_text().split()[0]
    (tmp_path / "spot" / "BTCUSDT-1m-2020-01-01.zip.CHECKSUM").write_text(f"{digest}  BTCUSDT-1m-2020-01-01.zip")
    with pytest.raises(ChecksumMismatchError, match="does not match") as err:
        read_kline_file(target)
    assert str(target) in str(err.value)


def test_microsecond_archive_from_2025(shared_data):
    frame = read_kline_file(shared_data / "spot" / "BTCUSDT-1h-2025-11-04.zip").frame
    assert frame.height == 24
    assert frame["open_time"][0] == datetime(2025, 11, 4, tzinfo=UTC)
    # close_time 1762217999999999 µs is kept at ms precision: open + 1h - 1 ms.
    assert frame["close_time"][0] == datetime(2025, 11, 4, 0, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("relative", "market", "rows"),
    [
        ("futures-um/BTCUSDT-1m-2022-09-05.zip", "usdm", 1440),
        ("futures-um/ETHUSDT-1m-2022-08-24.csv", "usdm", 1440),
        ("futures-um/ETHUSDT-1h-2022-08-24.zip", "usdm", 24),
        ("futures-cm/BTCUSD_PERP-1m-2022-10-24.zip", "coinm", 1440),
    ],
)
def test_futures_files_with_header(shared_data, relative, market, rows):
    parsed = read_kline_file(shared_data / relative)
    assert parsed.has_header
    assert parsed.scope.market == market
    assert parsed.frame.height == rows
    assert parsed.frame["open_time"].is_sorted()


def test_coinm_zero_volume_bars_are_valid(shared_data):
    frame = read_kline_file(shared_data / "futures-cm" / "BTCUSD_PERP-1m-2022-10-25.zip").frame
    zero = frame.filter(frame["volume"] == 0)
    assert zero.height == 6
    assert (zero["trades"] == 0).all()


def test_rest_json_dump(shared_data):
    parsed = read_kline_file(
        shared_data / "spot-rest-json" / "binance_klines_btcusdt_1m.json", symbol="BTCUSDT", interval="1m"
    )
    assert parsed.frame.height == 10
    assert parsed.scope.start == datetime(2026, 5, 8, 22, 10, tzinfo=UTC)
    assert parsed.scope.end == datetime(2026, 5, 8, 22, 20, tzinfo=UTC)


def test_rest_json_needs_symbol_when_name_says_nothing(shared_data):
    with pytest.raises(BadInputError, match="pass the symbol and interval"):
        read_kline_file(shared_data / "spot-rest-json" / "binance_klines_btcusdt_1m.json")


def _rows(shared_data, name="futures-um/ETHUSDT-1m-2022-08-24.csv") -> list[str]:
    return (shared_data / name).read_text().splitlines()


def write_usdm_copy(tmp_path, lines: list[str]):
    """A changed copy of the USD-M file, under a path that still says futures-um (so the market is known)."""
    path = tmp_path / "futures-um" / "ETHUSDT-1m-2022-08-24.csv"
    path.parent.mkdir()
    path.write_text("\n".join(lines))
    return path


def test_truncated_csv_names_file_and_row(shared_data, tmp_path):
    lines = _rows(shared_data)
    lines[101] = lines[101][:25]  # data row 101 (after the header) cut mid-line
    path = write_usdm_copy(tmp_path, lines)
    with pytest.raises(BadInputError) as err:
        read_kline_file(path)
    assert err.value.row == 101
    assert str(path) in str(err.value) and "row 101" in str(err.value)


def test_garbled_number_names_row_and_value(shared_data, tmp_path):
    lines = _rows(shared_data)
    fields = lines[7].split(",")
    fields[2] = "12x5.4"
    lines[7] = ",".join(fields)
    path = write_usdm_copy(tmp_path, lines)
    with pytest.raises(BadInputError, match=r"row 7: column high is not a number: '12x5.4'"):
        read_kline_file(path)


def test_binary_garbage_in_zip_is_rejected(tmp_path):
    path = tmp_path / "spot" / "BTCUSDT-1m-2020-01-01.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-1m-2020-01-01.csv", b"1577836800000,\xff\xfe\x00garbage\n")
    with pytest.raises(BadInputError, match="not ASCII"):
        read_kline_file(path)


def test_not_a_zip_is_rejected(tmp_path):
    path = tmp_path / "spot" / "BTCUSDT-1m-2020-01-01.zip"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(BadInputError, match="not a readable zip"):
        read_kline_file(path)


def test_inconsistent_ohlc_is_rejected(shared_data, tmp_path):
    lines = _rows(shared_data)
    fields = lines[50].split(",")
    fields[2] = str(float(fields[3]) - 1)  # high below low
    lines[50] = ",".join(fields)
    path = write_usdm_copy(tmp_path, lines)
    with pytest.raises(BadInputError, match=r"row 50: high is below max\(open, close\)"):
        read_kline_file(path)


def test_duplicate_open_time_is_rejected(shared_data, tmp_path):
    lines = _rows(shared_data)
    lines.insert(11, lines[10])
    path = write_usdm_copy(tmp_path, lines)
    with pytest.raises(BadInputError, match="duplicate"):
        read_kline_file(path)


def test_header_file_without_market_in_path_asks_for_it(shared_data, tmp_path):
    path = tmp_path / "ETHUSDT-1m-2022-08-24.csv"
    shutil.copy(shared_data / "futures-um" / "ETHUSDT-1m-2022-08-24.csv", path)
    with pytest.raises(BadInputError, match="pass the market"):
        read_kline_file(path)
    assert read_kline_file(path, market="usdm").frame.height == 1440


def test_mixed_timestamp_units_are_rejected(tmp_path):
    rows = [
        [1577836800000, "1", "1", "1", "1", "1", 1577836859999, "1", 1, "0", "0", "0"],
        [1577836860000000, "1", "1", "1", "1", "1", 1577836919999999, "1", 1, "0", "0", "0"],
    ]
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(BadInputError, match="mix milliseconds and microseconds"):
        read_kline_file(path, symbol="BTCUSDT", interval="1m")


def test_invalid_json_is_rejected(tmp_path):
    path = tmp_path / "dump.json"
    path.write_text('[[1577836800000, "1", "1"')
    with pytest.raises(BadInputError, match="invalid JSON"):
        read_kline_file(path, symbol="BTCUSDT", interval="1m")


def test_close_time_must_match_interval(tmp_path):
    rows = [[1577836800000, "1", "1", "1", "1", "1", 1577836859000, "1", 1, "0", "0", "0"]]
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(BadInputError, match=r"row 1: close_time is not open_time \+ 1m - 1 ms"):
        read_kline_file(path, symbol="BTCUSDT", interval="1m")


def test_csv_bytes_roundtrip_unchanged(shared_data):
    """Every price and volume string in the file survives parsing exactly (no float rounding)."""
    path = shared_data / "spot" / "ETHUSDT-1m-2022-08-14.zip"
    with zipfile.ZipFile(path) as archive:
        text = archive.read(archive.namelist()[0]).decode()
    first = text.splitlines()[0].split(",")
    frame = read_kline_file(path).frame
    assert str(frame["open"][0].normalize()) == str(Decimal(first[1]).normalize())
    assert frame["taker_buy_quote"][0] == Decimal(first[10])

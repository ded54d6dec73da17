"""`fks ingest freqtrade`: real freqtrade files through the one load path, one transaction per UTC day."""

from __future__ import annotations

import json
import shutil

import psycopg
import pytest
from click.testing import CliRunner

from fks_pipelines.cli import main


def invoke(args: list[str], db_url: str):
    return CliRunner().invoke(main, args, env={"FKS_DATABASE_URL": db_url}, catch_exceptions=False)


def counts(db_url: str) -> tuple[int, dict[str, int]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()[0]
        statuses = dict(conn.execute("SELECT status, count(*) FROM raw.ingest_log GROUP BY 1").fetchall())
    return rows, statuses


def slice_of(shared_data, tmp_path, name: str, rows: slice):
    """A freqtrade file holding some of the shared file's rows (the test needs days, not years)."""
    data = json.loads((shared_data / "freqtrade" / name).read_text())
    path = tmp_path / name
    path.write_text(json.dumps(data[rows]))
    return path, data[rows]


def test_the_whole_hourly_file_loads_with_its_gaps(db_url, shared_data):
    path = shared_data / "freqtrade" / "BTC_USDT-1h.json"
    first = invoke(["ingest", "freqtrade", str(path), "--json"], db_url)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 45_024 and summary["days"] == 1_882
    # The 27 exchange gaps (127 hours, SOURCES.md), the first day's 4 hours before listing and the last day's rest.
    assert summary["files"][0]["missing_bars"] == 127 + 4 + (24 - 11)
    print(f"whole BTC 1h file: {summary['seconds']}s, load {summary['files'][0]['seconds']}s")
    with psycopg.connect(db_url) as conn:
        before = conn.execute(
            "SELECT open_time, open, high, low, close, volume, quote_volume, trades FROM raw.binance_klines"
            " WHERE symbol = 'BTCUSDT' AND interval = '1h' ORDER BY open_time"
        ).fetchall()
        per_day = conn.execute("SELECT count(*) FROM raw.ingest_log WHERE status = 'loaded'").fetchone()[0]
    assert len(before) == 45_024 and per_day == 1_882  # one transaction per UTC day
    assert all(r[6] is None and r[7] is None for r in before)  # freqtrade has no quote volume, no trade count


def test_a_data_directory_loads_spot_and_futures_with_filters(db_url, shared_data, tmp_path):
    root = tmp_path / "binance"
    (root / "futures").mkdir(parents=True)
    eth, eth_rows = slice_of(shared_data, root, "ETH_USDT-1d.json", slice(0, 40))
    btc, _ = slice_of(shared_data, root, "BTC_USDT-1h.json", slice(0, 100))
    futures, fut_rows = slice_of(shared_data, root / "futures", "BTC_USDT-1h.json", slice(200, 260))
    futures.rename(root / "futures" / "BTC_USDT_USDT-1h-futures.json")
    (root / "futures" / "BTC_USDT_USDT-8h-funding_rate.json").write_text("[]")
    result = invoke(["ingest", "freqtrade", str(root), "--timeframes", "1d,1h", "--symbols", "ETHUSDT,BTCUSDT"], db_url)
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stderr and "funding_rate candles" in result.stderr
    with psycopg.connect(db_url) as conn:
        loaded = dict(
            conn.execute(
                "SELECT market || ':' || symbol || ':' || interval, count(*) FROM raw.binance_klines GROUP BY 1"
            ).fetchall()
        )
    assert loaded == {"spot:ETHUSDT:1d": 40, "spot:BTCUSDT:1h": 100, "usdm:BTCUSDT:1h": 60}
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT * FROM raw.binance_klines ORDER BY 1, 2, 3, 4").fetchall()
    again = invoke(["ingest", "freqtrade", str(root)], db_url)
    assert again.exit_code == 0, again.output
    with psycopg.connect(db_url) as conn:  # idempotent: the same rows, only loaded_at moves
        after = conn.execute("SELECT * FROM raw.binance_klines ORDER BY 1, 2, 3, 4").fetchall()
    assert [r[:-1] for r in after] == [r[:-1] for r in before]
    only = invoke(["ingest", "freqtrade", str(root), "--timeframes", "1d", "--json"], db_url)
    assert [f["symbol"] for f in json.loads(only.stdout)["files"]] == ["ETHUSDT"]
    assert len(eth_rows) == 40 and len(fut_rows) == 60


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("truncated", "row 13: invalid or truncated JSON"),
        ("string price", "row 1: field open is"),
        ("out of order", "row 3: row out of order"),
        ("duplicate", "row 3: duplicate open_time"),
    ],
)
def test_a_malformed_file_is_one_line_exit_2_and_nothing_written(db_url, shared_data, tmp_path, case, expected):
    good, _ = slice_of(shared_data, tmp_path, "ETH_USDT-1d.json", slice(0, 30))
    assert invoke(["ingest", "freqtrade", str(good)], db_url).exit_code == 0
    before = counts(db_url)
    rows = json.loads((shared_data / "freqtrade" / "BTC_USDT-1h.json").read_text())[:48]
    text = json.dumps(rows)
    if case == "truncated":
        text = text[: len(text) // 4]
    elif case == "string price":
        text = json.dumps([[rows[0][0], str(rows[0][1]), *rows[0][2:]], *rows[1:]])
    elif case == "out of order":
        text = json.dumps([rows[0], rows[2], rows[1], *rows[3:]])
    else:
        text = json.dumps([rows[0], rows[1], rows[1], *rows[3:]])
    bad = tmp_path / "dir" / "BTC_USDT-1h.json"
    bad.parent.mkdir()
    bad.write_text(text)
    shutil.copy(good, bad.parent / good.name)  # a good file beside it is not written either
    result = invoke(["ingest", "freqtrade", str(bad.parent)], db_url)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error") or "row " in line]
    assert len(lines) == 1 and f"{bad}, {expected}" in lines[0], result.stderr
    assert counts(db_url) == before


def test_a_day_holding_more_bars_is_refused_unless_forced(db_url, shared_data, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, _ = slice_of(shared_data, tmp_path / "a", "BTC_USDT-1h.json", slice(20, 68))
    short, _ = slice_of(shared_data, tmp_path / "b", "BTC_USDT-1h.json", slice(20, 60))
    assert invoke(["ingest", "freqtrade", str(full)], db_url).exit_code == 0
    before = counts(db_url)[0]
    refused = invoke(["ingest", "freqtrade", str(short)], db_url)
    assert refused.exit_code == 1 and "bars held" in refused.output
    assert counts(db_url)[0] == before
    forced = invoke(["ingest", "freqtrade", str(short), "--force"], db_url)
    assert forced.exit_code == 0 and counts(db_url)[0] == 40

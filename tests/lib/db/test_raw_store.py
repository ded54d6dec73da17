"""The one load path into raw.binance_klines, against the real embedded PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta

import polars as pl
import psycopg
import pytest

from fks_pipelines.lib.db.raw import read_klines, replace_klines, scope_summary
from fks_pipelines.lib.errors import BadInputError, RefusedLoadError
from fks_pipelines.lib.klines import LoadScope, ProvenAbsent
from fks_pipelines.lib.sources import SampleSource
from fks_pipelines.lib.sources.files import read_kline_file
from fks_pipelines.lib.sources.load import load_day
from fks_pipelines.lib.sources.sample import sample_day, sample_klines

UTC = UTC
SYMBOLS = ("BTCUSDT", "ETHUSDT")
DAY = date(2024, 2, 1)
SCOPE = LoadScope.for_day("spot", "1m", SYMBOLS, DAY.isoformat())


def day_frame(seed: int = 42, gap_rate: float = 0.0) -> pl.DataFrame:
    return sample_klines(SYMBOLS, DAY, DAY + timedelta(days=1), seed=seed, gap_rate=gap_rate)


def table_rows(conn) -> int:
    return conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()[0]


def test_load_then_reload_gives_exactly_the_same_rows(conn):
    frame = day_frame()
    first = replace_klines(conn, frame, SCOPE, source="sample")
    snapshot = read_klines(conn, SCOPE)
    second = replace_klines(conn, frame, SCOPE, source="sample")
    assert (first.rows_deleted, first.rows_loaded) == (0, 2880)
    assert (second.rows_deleted, second.rows_loaded) == (2880, 2880)
    assert read_klines(conn, SCOPE).equals(snapshot)
    assert snapshot.equals(frame.sort("symbol", "open_time"))
    logged = conn.execute("SELECT status, rows_loaded, partition_key FROM raw.ingest_log ORDER BY id").fetchall()
    assert logged == [("loaded", 2880, None), ("loaded", 2880, None)]


def test_forced_reload_with_fewer_rows_removes_what_is_gone(conn):
    replace_klines(conn, day_frame(), SCOPE, source="sample")
    gappy = day_frame(gap_rate=0.02)
    replace_klines(conn, gappy, SCOPE, source="sample", force=True)
    assert table_rows(conn) == gappy.height < 2880
    missing = {s.symbol: s.missing_bars for s in scope_summary(conn, SCOPE)}
    assert sum(missing.values()) == 2880 - gappy.height


def test_other_days_and_symbols_are_untouched(conn):
    next_day = LoadScope.for_day("spot", "1m", SYMBOLS, (DAY + timedelta(days=1)).isoformat())
    replace_klines(
        conn, sample_klines(SYMBOLS, DAY + timedelta(days=1), DAY + timedelta(days=2)), next_day, source="sample"
    )
    replace_klines(conn, day_frame(), SCOPE, source="sample")
    only_btc = LoadScope.for_day("spot", "1m", ("BTCUSDT",), DAY.isoformat())
    replace_klines(conn, day_frame().filter(pl.col("symbol") == "BTCUSDT"), only_btc, source="sample")
    assert table_rows(conn) == 4 * 1440


def test_bad_frame_is_rejected_logged_and_writes_nothing(conn):
    replace_klines(conn, day_frame(), SCOPE, source="sample")
    before = read_klines(conn, SCOPE)
    broken = day_frame(seed=7).with_columns(
        high=pl.when(pl.int_range(pl.len()) == 100).then(pl.col("low") - 1).otherwise(pl.col("high"))
    )
    with pytest.raises(BadInputError, match="row 101: high is below max"):
        replace_klines(conn, broken, SCOPE, source="sample", detail="test frame")
    assert read_klines(conn, SCOPE).equals(before)
    status, error = conn.execute("SELECT status, error FROM raw.ingest_log ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "rejected" and "high is below" in error


def test_rows_outside_the_scope_are_rejected(conn):
    frame = sample_klines(SYMBOLS, DAY, DAY + timedelta(days=2))
    with pytest.raises(BadInputError, match="outside the load scope"):
        replace_klines(conn, frame, SCOPE, source="sample")
    assert table_rows(conn) == 0


def test_database_error_mid_load_rolls_back(conn):
    replace_klines(conn, day_frame(), SCOPE, source="sample")
    before = read_klines(conn, SCOPE)
    # A constraint the validator does not know about fails the COPY inside the transaction.
    conn.execute("ALTER TABLE raw.binance_klines ADD CONSTRAINT test_cap CHECK (trades < 10) NOT VALID")
    with pytest.raises(psycopg.errors.CheckViolation):
        replace_klines(conn, day_frame(seed=9), SCOPE, source="sample")
    conn.execute("ALTER TABLE raw.binance_klines DROP CONSTRAINT test_cap")
    assert read_klines(conn, SCOPE).equals(before)
    assert conn.execute("SELECT status FROM raw.ingest_log ORDER BY id DESC LIMIT 1").fetchone() == ("failed",)


def test_load_killed_midway_leaves_the_previous_rows(conn, db_url):
    previous = day_frame(seed=1)
    replace_klines(conn, previous, SCOPE, source="sample")
    child = textwrap.dedent(
        f"""
        import sys, time
        from datetime import date, timedelta
        from fks_pipelines.lib.db.connect import connect
        from fks_pipelines.lib.db.raw import replace_klines
        from fks_pipelines.lib.klines import LoadScope
        from fks_pipelines.lib.sources.sample import sample_klines

        def stall(done, total):
            # Past the DELETE and part of the COPY: tell the parent, then wait to be killed.
            print("MIDWAY", done, total, flush=True)
            time.sleep(120)

        frame = sample_klines({SYMBOLS!r}, date(2024, 2, 1), date(2024, 2, 2), seed=2)
        with connect({db_url!r}) as conn:
            replace_klines(conn, frame, LoadScope.for_day("spot", "1m", {SYMBOLS!r}, "2024-02-01"),
                           source="sample", on_progress=stall, chunk_rows=500)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("MIDWAY 500 2880"), line
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert read_klines(conn, SCOPE).equals(previous.sort("symbol", "open_time"))
    # The lock and the aborted transaction are gone: the next load goes through.
    result = replace_klines(conn, day_frame(seed=3), SCOPE, source="sample")
    assert result.rows_deleted == 2880


def test_real_archive_day_loads_exactly(conn, shared_data):
    parsed = read_kline_file(shared_data / "spot" / "BTCUSDT-1m-2020-01-01.zip")
    replace_klines(conn, parsed.frame, parsed.scope, source="file", checksum=parsed.sha256)
    volume, trades, high = conn.execute(
        "SELECT sum(volume), sum(trades), max(high) FROM raw.binance_klines WHERE symbol = 'BTCUSDT'"
    ).fetchone()
    assert str(volume.normalize()) == "16792.388165"
    assert trades == 194010
    assert str(high.normalize()) == "7255"  # SOURCES.md: the day's high is 7255.00
    summary = scope_summary(conn, parsed.scope)[0]
    assert summary.missing_bars == 0
    assert summary.first_bar == datetime(2020, 1, 1, tzinfo=UTC)
    assert summary.last_bar == datetime(2020, 1, 1, 23, 59, tzinfo=UTC)


def last_log(conn) -> tuple:
    return conn.execute(
        "SELECT status, rows_deleted, rows_loaded, error FROM raw.ingest_log ORDER BY id DESC LIMIT 1"
    ).fetchone()


def test_a_shorter_answer_never_replaces_a_held_day(conn):
    """An empty or short answer (Binance's `[]`, a 100-row page) is refused: the day keeps its 1,440 bars."""
    replace_klines(conn, day_frame(), SCOPE, source="sample")
    before = read_klines(conn, SCOPE)
    for offered, count in ((day_frame().clear(), "0"), (day_frame().group_by("symbol").head(100), "100")):
        with pytest.raises(RefusedLoadError) as refused:
            replace_klines(conn, offered, SCOPE, source="binance_rest", detail="GET /api/v3/klines")
        message = str(refused.value)
        assert message.startswith("refused to replace spot 1m 2024-02-01: ")
        assert f"BTCUSDT: 1440 bars held, {count} offered; ETHUSDT: 1440 bars held, {count} offered" in message
        assert read_klines(conn, SCOPE).equals(before)
        assert last_log(conn) == ("refused", None, None, message)
    # A day holding fewer bars may grow or be reloaded with as many; --force replaces whatever it holds.
    assert replace_klines(conn, day_frame(seed=5), SCOPE, source="sample").rows_loaded == 2880
    forced = replace_klines(conn, day_frame().clear(), SCOPE, source="sample", force=True)
    assert (forced.rows_deleted, forced.rows_loaded, table_rows(conn)) == (2880, 0, 0)


def test_proof_of_absence_lets_a_day_shrink_only_where_proven(conn):
    """A symbol listed at noon: the source proves there are no bars before it, so the day may hold 720."""
    replace_klines(conn, day_frame(), SCOPE, source="sample")
    noon = datetime(2024, 2, 1, 12, tzinfo=UTC)
    afternoon = day_frame().filter(pl.col("open_time") >= noon)
    proof = [ProvenAbsent(s, SCOPE.start, noon, f"first bar of {s} opens at noon") for s in SYMBOLS]
    with pytest.raises(RefusedLoadError, match="BTCUSDT: 1080 bars held, 720 offered"):
        # A proof covering less than what is missing is not enough (00:00-06:00 proven, 06:00-12:00 not).
        replace_klines(
            conn,
            afternoon,
            SCOPE,
            source="binance_rest",
            absent=[replace_end(p, noon - timedelta(hours=6)) for p in proof],
        )
    result = replace_klines(conn, afternoon, SCOPE, source="binance_rest", absent=proof)
    assert (result.rows_deleted, result.rows_loaded, table_rows(conn)) == (2880, 1440, 1440)


def replace_end(absent: ProvenAbsent, end: datetime) -> ProvenAbsent:
    return ProvenAbsent(absent.symbol, absent.start, end, absent.evidence)


def test_days_that_have_not_ended_and_bars_that_have_not_closed_are_rejected(conn):
    future = LoadScope.for_day("spot", "1m", SYMBOLS, "2030-01-01")
    frame = sample_klines(SYMBOLS, date(2030, 1, 1), date(2030, 1, 2))
    with pytest.raises(BadInputError, match=r"2030-01-01.*not ended yet \(it ends 2030-01-02T00:00:00\+00:00"):
        replace_klines(conn, frame, future, source="sample")
    today = datetime.now(UTC).date()
    with pytest.raises(BadInputError, match="not ended yet"):
        replace_klines(
            conn,
            sample_klines(SYMBOLS, today, today).clear(),
            LoadScope.for_day("spot", "1m", SYMBOLS, today.isoformat()),
            source="sample",
        )
    # A weekly bar that opened yesterday closes next week: the day has ended, the bar has not.
    yesterday = today - timedelta(days=1)
    weekly = (
        sample_day("BTCUSDT", yesterday)
        .head(1)
        .with_columns(
            interval=pl.lit("1w"), close_time=pl.col("open_time") + timedelta(days=7) - timedelta(milliseconds=1)
        )
    )
    with pytest.raises(BadInputError, match=r"row 1: bar has not closed yet \(close_time .* is after now\)"):
        replace_klines(
            conn, weekly, LoadScope.for_day("spot", "1w", ["BTCUSDT"], yesterday.isoformat()), source="sample"
        )
    assert table_rows(conn) == 0
    assert [r[0] for r in conn.execute("SELECT status FROM raw.ingest_log ORDER BY id").fetchall()] == ["rejected"] * 3
    # load_day refuses before fetching anything, and logs it too.
    with pytest.raises(BadInputError, match="not ended yet"):
        load_day(conn, SampleSource(), "spot", "1m", SYMBOLS, date(2030, 1, 1))
    assert last_log(conn)[0] == "rejected" and table_rows(conn) == 0


@pytest.mark.parametrize(
    "bad", ["BTC'; DROP TABLE raw.binance_klines;--", "btcusdt", "B", "BTC USDT", "A" * 21, "../../etc"]
)
def test_symbols_outside_binance_rules_are_rejected_by_the_loader(conn, bad):
    with pytest.raises(BadInputError, match="invalid symbol"):
        LoadScope.for_day("spot", "1m", [bad], DAY.isoformat())
    frame = sample_day("BTCUSDT", DAY).with_columns(symbol=pl.lit(bad))
    with pytest.raises(BadInputError, match="invalid symbol"):
        replace_klines(conn, frame, LoadScope.for_day("spot", "1m", ["BTCUSDT"], DAY.isoformat()), source="sample")
    assert table_rows(conn) == 0

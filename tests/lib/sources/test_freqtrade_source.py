"""FKS_SOURCE=freqtrade: the raw asset's source over a freqtrade data directory (default: the bundled real
history). A day inside a file's range with an exchange gap is loaded as it is, re-loaded without refusal, and
never filled; a day outside the range gets no rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from fks_pipelines.lib.db.connect import migrate
from fks_pipelines.lib.db.raw import incomplete_days, read_klines, replace_klines
from fks_pipelines.lib.errors import RefusedLoadError
from fks_pipelines.lib.klines import LoadScope
from fks_pipelines.lib.sources import BUNDLED_FREQTRADE_DIR, FreqtradeSource, build_source
from fks_pipelines.lib.sources.load import load_day
from fks_pipelines.settings import Settings

MAINTENANCE = date(2018, 2, 8)  # Binance's maintenance: one bar at 00:00, then none until 2018-02-09 10:00


def test_the_setting_selects_the_bundled_history_by_default():
    settings = Settings.from_env({"FKS_SOURCE": "freqtrade"}, recorded=False)
    assert settings.freqtrade_dir == BUNDLED_FREQTRADE_DIR
    source = build_source("freqtrade", freqtrade_dir=settings.freqtrade_dir)
    assert isinstance(source, FreqtradeSource) and source.name == "freqtrade"


def test_a_day_is_served_from_the_file_parsed_once(shared_data):
    source = FreqtradeSource(shared_data / "freqtrade")
    batch = source.fetch_day("spot", ["BTCUSDT", "ETHUSDT"], "1h", date(2020, 1, 1))
    assert batch.frame.height == 48 and batch.absent == ()
    assert batch.frame.filter(pl.col("symbol") == "BTCUSDT")["open"][0] == Decimal("7195.24")
    cached = dict(source._files)
    source.fetch_day("spot", ["BTCUSDT"], "1h", date(2020, 1, 2))
    assert source._files[("spot", "BTCUSDT", "1h")] is cached[("spot", "BTCUSDT", "1h")]
    assert source.fetch_day("spot", ["BTCUSDT"], "1h", date(2023, 1, 1)).frame.height == 0  # after the file


def test_a_real_gap_is_proven_absent_reloaded_and_never_filled(conn, shared_data):
    migrate(conn)
    source = FreqtradeSource(shared_data / "freqtrade")
    batch = source.fetch_day("spot", ["BTCUSDT"], "1h", MAINTENANCE)
    assert batch.frame.height == 1
    (proof,) = batch.absent
    assert (proof.start, proof.end) == (
        datetime(2018, 2, 8, 1, tzinfo=UTC),
        datetime(2018, 2, 9, 10, tzinfo=UTC),
    )
    # The day held 24 bars from elsewhere (say, a filled series): the file's proof lets the load drop them.
    scope = LoadScope.for_day("spot", "1h", ["BTCUSDT"], MAINTENANCE.isoformat())
    filled = pl.concat(
        [
            batch.frame.with_columns(
                pl.col("open_time") + timedelta(hours=h), pl.col("close_time") + timedelta(hours=h)
            )
            for h in range(24)
        ]
    )
    replace_klines(conn, filled, scope, source="test")
    with pytest.raises(RefusedLoadError):  # without the proof, fewer bars are refused
        replace_klines(conn, batch.frame, scope, source="freqtrade")
    for _ in range(2):  # and with it, loaded as the file has it, and again
        result, _ = load_day(conn, source, "spot", "1h", ["BTCUSDT"], MAINTENANCE)
        assert result.rows_loaded == 1
    assert read_klines(conn, scope).height == 1
    # The proof is kept as a known gap (clipped to the day): the gap sensor does not re-fetch the day.
    assert conn.execute("SELECT range_start, range_end FROM raw.known_gaps").fetchall() == [
        (datetime(2018, 2, 8, 1, tzinfo=UTC), datetime(2018, 2, 9, tzinfo=UTC))
    ]
    assert incomplete_days(conn, "spot", "1h", ["BTCUSDT"], MAINTENANCE, MAINTENANCE, 24) == []
    assert incomplete_days(conn, "spot", "1h", ["ETHUSDT"], MAINTENANCE, MAINTENANCE, 24) == [
        ("ETHUSDT", MAINTENANCE, 0)
    ]

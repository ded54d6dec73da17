"""One user's bad strategy does not stop the pipeline (issue 22): with a strategies folder holding a good file, one
whose ``signals`` raises, one that hangs past FKS_STRATEGY_TIMEOUT, one calling sys.exit at import and one whose
GRID is above FKS_STRATEGY_MAX_GRID,
analytics/strategy_choices and analytics/signals succeed on real history; the good strategies' rows are written,
each bad one is named in one warning line of the run's log and in the asset's ``strategies_failed`` metadata, and
``fks status`` warns with their names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.defs.analytics.assets import signals, strategy_choices
from fks_pipelines.defs.analytics.resources import QuantResource
from fks_pipelines.defs.shared import MarketDataResource, PostgresResource
from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.metrics import status_rows
from fks_pipelines.lib.quant.strategy_files import load_strategies
from fks_pipelines.monitoring import snapshot
from fks_pipelines.settings import Settings
from tests.lib.quant.real_hourly import load_marts

SYMBOLS = ["BTCUSDT"]
START, END = datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 1, 25, tzinfo=UTC)
STRATEGY = """
import numpy as np

GRID = {{"window": [5, 10]}}


def signals(bars, window):
    {body}
    close = bars["close"].to_numpy()
    up = np.zeros(len(close), dtype=bool)
    up[1:] = close[1:] > close[:-1]
    return up, ~up
"""
BAD = {"raises", "sleeps", "exits_at_import", "huge"}


@pytest.fixture
def folder(tmp_path, monkeypatch):
    path = tmp_path / "strategies"
    path.mkdir()
    (path / "fine.py").write_text(STRATEGY.format(body="pass"))
    (path / "raises.py").write_text(STRATEGY.format(body="raise RuntimeError('boom')"))
    (path / "sleeps.py").write_text(STRATEGY.format(body="import time; time.sleep(30)"))
    (path / "exits_at_import.py").write_text("import sys\nsys.exit(3)\n")
    (path / "huge.py").write_text(
        STRATEGY.format(body="pass")
        .replace('{"window": [5, 10]}', '{"window": range(200), "k": range(100)}')
        .replace("def signals(bars, window):", "def signals(bars, window, k):")
    )
    monkeypatch.setenv("FKS_STRATEGIES_DIR", str(path))
    monkeypatch.setenv("FKS_STRATEGY_TIMEOUT", "0.5")
    monkeypatch.setenv("FKS_SWEEP_WORKERS", "1")
    return path


def test_bad_user_strategies_are_skipped_and_named_while_the_others_go_on(folder, db_url, shared_data):
    with connect(db_url) as conn:
        load_marts(conn, shared_data, SYMBOLS, START, END)
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [strategy_choices, signals],
        instance=instance,
        resources={
            "database": PostgresResource(url=db_url),
            "market_data": MarketDataResource(symbols=SYMBOLS),
            # The settings reach the assets through the resource, as definitions.py builds it from them.
            "quant": QuantResource(sweep_workers=1, strategies_dir=str(folder), strategy_timeout_s=0.5),
        },
        tags={ASSET_PARTITION_RANGE_START_TAG: "2021-01-22", ASSET_PARTITION_RANGE_END_TAG: "2021-01-24"},
        run_config={
            "ops": {"analytics__strategy_choices": {"config": {"strategies": ["ma_cross", "fine", "raises", "sleeps"]}}}
        },
    )
    assert result.success

    # Each asset's metadata names every bad strategy with its one-line reason.
    (choices,) = result.asset_materializations_for_node("analytics__strategy_choices")
    failed = choices.metadata["strategies_failed"].value
    assert set(failed) == BAD
    assert failed["raises"].endswith("raises.py: signals({'window': 5}) raised RuntimeError: boom")
    assert "ran past 0.5 s (FKS_STRATEGY_TIMEOUT)" in failed["sleeps"]
    assert failed["exits_at_import"].endswith("exits_at_import.py: does not import: it called sys.exit(3)")
    assert failed["huge"].endswith("huge.py: GRID has 20,000 combinations: at most 10,000 (FKS_STRATEGY_MAX_GRID)")
    signal_events = result.asset_materializations_for_node("analytics__signals")
    assert len(signal_events) == 3  # one per day
    assert all(set(e.metadata["strategies_failed"].value) == BAD for e in signal_events)

    # One warning line per bad strategy and asset in the run's log, naming it.
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level >= 30]
    for name in BAD:
        named = [w for w in warnings if w.startswith(f"strategy {name} skipped: ")]
        assert len(named) == 2, (name, warnings)  # strategy_choices and signals

    # The good strategies' rows are there; the bad ones are not.
    with connect(db_url) as conn:
        chosen = conn.execute("SELECT DISTINCT candidate FROM analytics.strategy_choices").fetchall()
        rows = conn.execute("SELECT bucket, strategy_signals FROM analytics.signals ORDER BY bucket").fetchall()
        states = conn.execute("SELECT count(*) FROM analytics.strategy_state").fetchone()[0]
    assert chosen and {c for (c,) in chosen} <= {"ma_cross", "fine"}
    assert [r[0].date().isoformat() for r in rows] == ["2021-01-22", "2021-01-23", "2021-01-24"]
    for _, strategy_signals in rows:
        assert set(strategy_signals) == set(load_strategies(folder)) - BAD
        assert strategy_signals["fine"]["entry"] is not strategy_signals["fine"]["exit"]
    assert states == 3

    # fks status warns with the names.
    rows_by_name = {r.item: r for r in status_rows(snapshot(Settings.from_env(), db_url, instance))}
    item = rows_by_name["strategies"]
    assert item.state == "warn"
    assert item.detail == "4 left out of the latest runs: exits_at_import, huge, raises, sleeps"


def test_status_says_nothing_until_a_run_reports_and_ok_when_none_failed():
    from fks_pipelines.lib.metrics import PlatformSnapshot

    def item(failed):
        snap = PlatformSnapshot(datetime.now(UTC), True, strategies_failed=failed)
        return [(r.state, r.detail) for r in status_rows(snap) if r.item == "strategies"]

    assert item(None) == []
    assert item({}) == [("ok", "none failing in the latest runs")]
    assert item({"b": "x", "a": "y"}) == [("warn", "2 left out of the latest runs: a, b")]

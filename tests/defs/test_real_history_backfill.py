"""The main job over real shared history, end to end (issue 21): the freqtrade BTC/ETH hourly files through the
raw layer (FKS_SOURCE=freqtrade), the dbt marts, the weekly choices, signals, documents, recommendations for a paper
account and the evaluation, in one range run as a backfill runs it. The weekly choices cover the whole window, and
the evaluation's baselines equal the same baselines computed here from the files themselves."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.definitions import defs
from fks_pipelines.defs.dbt.resources import dbt_resource
from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, PostgresResource
from fks_pipelines.lib.db.connect import connect
from fks_pipelines.lib.db.portfolio import import_accounts
from fks_pipelines.lib.portfolio.ledger import Account
from fks_pipelines.lib.portfolio.paper import FEE, SLIPPAGE

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FIRST, LAST = date(2021, 1, 1), date(2021, 3, 14)  # January warms up; the account opens at the close of Feb 1
OPENED = date(2021, 2, 1)
ACCOUNT = "real-paper"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture(scope="module")
def real_run(databases, shared_data):
    url = databases.create()
    with connect(url) as conn:
        opening = midnight(OPENED) + timedelta(days=1)
        import_accounts(conn, [Account(ACCOUNT, "personal", Decimal(10_000), opening, [], mode="paper")], "spot")
    result = defs.resolve_job_def("all_assets_job").execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={ASSET_PARTITION_RANGE_START_TAG: str(FIRST), ASSET_PARTITION_RANGE_END_TAG: str(LAST)},
        resources=resources(url, str(shared_data / "freqtrade")),
    )
    assert result.success
    yield url, shared_data / "freqtrade"
    databases.drop(url)


def file_days(folder) -> dict[str, dict[date, tuple[float, float]]]:
    """(open, close) per symbol and UTC day, from the freqtrade files themselves: the day's first hourly open and
    last hourly close."""
    out: dict[str, dict[date, tuple[float, float]]] = {}
    for symbol, name in (("BTCUSDT", "BTC_USDT-1h.json"), ("ETHUSDT", "ETH_USDT-1h.json")):
        bars: dict[date, list] = defaultdict(list)
        for ms, o, _h, _l, c, _v in json.loads((folder / name).read_text()):
            at = datetime.fromtimestamp(ms / 1000, UTC)
            if FIRST <= at.date() <= LAST:
                bars[at.date()].append((at, o, c))
        out[symbol] = {d: (min(b)[1], max(b)[2]) for d, b in bars.items()}
    return out


def test_the_weekly_choice_is_decided_every_monday_of_the_window(real_run):
    url, _ = real_run
    # Every Monday from the first with 7 + 3 days of hourly bars before it (Jan 11) to the end of the data.
    expected = [midnight(date(2021, 1, 11)) + timedelta(weeks=k) for k in range(10)]  # Jan 11 .. Mar 15 00:00
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT symbol, decided_at FROM analytics.strategy_choices ORDER BY 1, 2").fetchall()
        marts = conn.execute(
            "SELECT symbol, count(*), min(bar_source), max(bar_source) FROM marts.fct_ohlcv_1h GROUP BY 1 ORDER BY 1"
        ).fetchall()
    for symbol in SYMBOLS:
        assert [at for s, at in rows if s == symbol] == expected
    # The marts hold the files' hourly bars (two real exchange gaps in the window: 2021-02-11 and 2021-03-06).
    assert marts == [(s, 73 * 24 - 2, "1h", "1h") for s in SYMBOLS]


def test_the_evaluation_baselines_equal_an_independent_recomputation(real_run):
    url, folder = real_run
    market = file_days(folder)
    with psycopg.connect(url) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT baseline, start_date, end_date, total_return, fees, n_decisions FROM recommendations.evaluation"
                " WHERE account = %s AND period = 'window'",
                (ACCOUNT,),
            ).fetchall()
        }
        trades = conn.execute(
            "SELECT symbol, side, quantity::float8, price::float8, fee::float8, executed_at FROM portfolio.trades"
            " WHERE account = %s ORDER BY executed_at, trade_id",
            (ACCOUNT,),
        ).fetchall()
        states = {
            (b.date(), s): p
            for b, s, p in conn.execute("SELECT bucket, symbol, position FROM analytics.strategy_state").fetchall()
        }
    assert set(rows) == {"recommendations", "unprotected", "cash", "buy_and_hold", "strategy_only"}
    start, end = rows["cash"][0], rows["cash"][1]
    assert (start, end) == (OPENED, LAST)  # the account's first decision (its opening close) to the last
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    close = {s: market[s][end][1] for s in SYMBOLS}

    def buy(cash: float, s: str, day: date, value: float) -> tuple[float, float]:
        o = market[s][day][0]
        q = min(value / o, cash / (o * (1 + SLIPPAGE) * (1 + FEE)))
        return q, cash - q * o * (1 + SLIPPAGE) * (1 + FEE)

    expected = {"cash": 10_000.0}
    cash, held = 10_000.0, dict.fromkeys(SYMBOLS, 0.0)  # the ledger, replayed up to the last close
    for s, side, q, p, f, at in trades:
        if at <= midnight(end + timedelta(days=1)):
            sign = 1 if side == "buy" else -1
            held[s] += sign * q
            cash -= sign * q * p + f
    expected["recommendations"] = cash + sum(held[s] * close[s] for s in SYMBOLS)
    cash, held = 10_000.0, {}  # buy and hold: half each at the first fill moment (D0 + 1's open), then held
    for s in SYMBOLS:
        held[s], cash = buy(cash, s, days[1], 5_000.0)
    expected["buy_and_hold"] = cash + sum(held[s] * close[s] for s in SYMBOLS)
    cash, held = 10_000.0, dict.fromkeys(SYMBOLS, 0.0)  # each strategy's sleeve: long at a close -> in at the open
    for i in range(1, len(days)):
        day, before, older = days[i], days[i - 1], days[i - 2] if i > 1 else None
        equity_at_open = cash + sum(held[s] * market[s][day][0] for s in SYMBOLS)
        for s in SYMBOLS:
            if held[s] and states.get((before, s)) != "long":
                cash += held[s] * market[s][day][0] * (1 - SLIPPAGE) * (1 - FEE)
                held[s] = 0.0
        for s in SYMBOLS:
            if states.get((before, s)) == "long" and (older is None or states.get((older, s)) != "long"):
                held[s], cash = buy(cash, s, day, equity_at_open / 2)
    expected["strategy_only"] = cash + sum(held[s] * close[s] for s in SYMBOLS)
    for baseline, final in expected.items():
        assert rows[baseline][2] == pytest.approx(final / 10_000.0 - 1, abs=1e-6), baseline
    assert rows["buy_and_hold"][3] > 0 and rows["recommendations"][4] == len(days)


RUN_JOB = """
import sys
from dagster import DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from tests.defs.test_real_history_backfill import FIRST, LAST, resources
from fks_pipelines.definitions import defs
defs.resolve_job_def("all_assets_job").execute_in_process(
    instance=DagsterInstance.ephemeral(),
    tags={ASSET_PARTITION_RANGE_START_TAG: str(FIRST), ASSET_PARTITION_RANGE_END_TAG: str(LAST)},
    resources=resources(sys.argv[1], sys.argv[2]),
)
"""
# Columns that say when or by which process a row was written, not what it holds (besides those defaulting to now()).
BOOKKEEPING = {"loaded_at", "created_at", "computed_at", "last_run_at", "scored_at", "embedded_at", "id", "chunk_id"}


def resources(url: str, folder: str) -> dict:
    return {
        "database": PostgresResource(url=url),
        "market_data": MarketDataResource(source="freqtrade", freqtrade_dir=folder, interval="1h", symbols=SYMBOLS),
        "dbt": dbt_resource(),
        "embedding_model": EmbeddingModelResource(device="cpu"),
    }


def table_contents(url: str) -> dict[str, list[tuple]]:
    """Every table of the platform's schemas, sorted, without its bookkeeping columns."""
    out = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            " AND table_schema IN ('raw', 'marts', 'analytics', 'knowledge', 'recommendations', 'portfolio')"
            " AND table_name <> 'ingest_log' ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            columns = [
                c
                for (c,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                    " AND data_type NOT IN ('USER-DEFINED') AND coalesce(column_default, '') NOT ILIKE '%%now()%%'"
                    " ORDER BY ordinal_position",
                    (schema, table),
                ).fetchall()
                if c not in BOOKKEEPING
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            out[f"{schema}.{table}"] = conn.execute(
                f'SELECT {listed} FROM "{schema}"."{table}" ORDER BY {listed}'
            ).fetchall()
    return out


def test_a_backfill_killed_mid_run_and_run_again_ends_with_the_tables_of_an_uninterrupted_one(real_run, databases):
    import os
    import signal
    import subprocess
    import sys
    import time

    url, folder = real_run
    killed = databases.create()
    try:
        with connect(killed) as conn:
            opening = midnight(OPENED) + timedelta(days=1)
            import_accounts(conn, [Account(ACCOUNT, "personal", Decimal(10_000), opening, [], mode="paper")], "spot")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.Popen([sys.executable, "-c", RUN_JOB, killed, str(folder)], env=env, cwd=PROJECT_ROOT)
        deadline = time.monotonic() + 600
        with psycopg.connect(killed, autocommit=True) as conn:  # kill it once weekly choices are being written
            while time.monotonic() < deadline and proc.poll() is None:
                if conn.execute("SELECT count(*) FROM analytics.strategy_choices").fetchone()[0] >= 8:
                    break
                time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        with psycopg.connect(killed) as conn:
            assert conn.execute("SELECT count(*) FROM recommendations.daily").fetchone()[0] == 0  # killed early
        result = defs.resolve_job_def("all_assets_job").execute_in_process(
            instance=DagsterInstance.ephemeral(),
            tags={ASSET_PARTITION_RANGE_START_TAG: str(FIRST), ASSET_PARTITION_RANGE_END_TAG: str(LAST)},
            resources=resources(killed, str(folder)),
        )
        assert result.success
        resumed, uninterrupted = table_contents(killed), table_contents(url)
        assert set(resumed) == set(uninterrupted)
        for table, rows in uninterrupted.items():
            assert resumed[table] == rows, table
    finally:
        databases.drop(killed)

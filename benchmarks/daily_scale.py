"""Cost of the daily run as the symbol universe grows: seconds per symbol at a small and a large universe.

For each universe size N (sample symbols: the five known ones, then S000USDT, S001USDT, ... whose parameters the
sample source derives from the name), a scratch database gets --history days through ``daily_job`` over that
range (one range run, as a backfill), then the weekly ``reoptimize_job`` (timed: the re-optimization's cost,
reported, not targeted), then ``daily_job`` for the next day alone, as the schedule runs it (raw -> dbt ->
signals -> documents and embeddings -> recommendation), timed, with the time per step from the run's events.
One paper account (100,000 USDT from the first day) makes the recommendation step decide and fill every symbol.
Peak RSS covers this process and its children (dbt). The last line is one JSON object; target:
per_symbol_ratio (seconds per symbol at the large size / at the small size) <= 1.2. dbt's start-up is a fixed cost
that flatters that ratio, so the line also has the marginal seconds per added symbol and the per-symbol ratio of
the steps other than dbt's (``non_dbt_per_symbol_ratio``): about 1.0 when the symbol-dependent work is linear.

History: 21 days by default, enough for what the daily job reads: the indicators warm up within 50 hourly bars
(MACD 26 + 9, SMA 50), and the walk-forward (7 days in-sample + 3 validation before each weekly Monday decision)
makes two decisions per symbol from 2024-03-01 (on 03-11 and 03-18), the first with a complete test week, so the
re-optimization really optimizes and the timed day (03-22) trades the chosen parameters.

    python benchmarks/daily_scale.py [--small 10] [--large 100] [--history 21]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import _home  # noqa: E402, F401 - its own FKS_HOME and port, before anything reads the settings
from _scratch import create_scratch_database, drop_scratch_database, step_seconds  # noqa: E402
from dagster import DagsterInstance  # noqa: E402
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG  # noqa: E402

from fks_pipelines.definitions import defs  # noqa: E402
from fks_pipelines.defs.dbt.resources import dbt_resource  # noqa: E402
from fks_pipelines.defs.shared import (  # noqa: E402
    EmbeddingModelResource,
    MarketDataResource,
    PostgresResource,
)
from fks_pipelines.lib.db.connect import connect  # noqa: E402
from fks_pipelines.lib.db.portfolio import import_accounts  # noqa: E402
from fks_pipelines.lib.portfolio.ledger import Account  # noqa: E402
from fks_pipelines.lib.sources.sample import SAMPLE_SYMBOLS  # noqa: E402

FIRST_DAY = date(2024, 3, 1)


def universe(n: int) -> list[str]:
    known = list(SAMPLE_SYMBOLS)
    return (known + [f"S{i:03d}USDT" for i in range(max(n - len(known), 0))])[:n]


def resources(url: str, symbols: list[str]) -> dict:
    return {
        "database": PostgresResource(url=url),
        "market_data": MarketDataResource(symbols=symbols),
        "dbt": dbt_resource(),
        "embedding_model": EmbeddingModelResource(device="cpu"),
    }


def measure(n: int, history: int) -> dict:
    symbols = universe(n)
    url = create_scratch_database(f"fks_bench_scale_{n}")
    instance = DagsterInstance.ephemeral()
    try:
        with connect(url) as conn:  # a paper account: the recommendation step decides (and fills) every symbol
            opened = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)
            import_accounts(conn, [Account("bench", "personal", Decimal(100_000), opened, [], mode="paper")], "spot")
        last_history = FIRST_DAY + timedelta(days=history - 1)
        t = time.perf_counter()
        backfill = defs.resolve_job_def("daily_job").execute_in_process(
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: FIRST_DAY.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: last_history.isoformat(),
            },
            resources=resources(url, symbols),
        )
        assert backfill.success
        history_s = time.perf_counter() - t
        print(f"{n} symbols: {history} days of history in {history_s:.1f} s", file=sys.stderr, flush=True)
        t = time.perf_counter()
        reopt = defs.resolve_job_def("reoptimize_job").execute_in_process(
            instance=instance,
            run_config={
                "ops": {"analytics__strategy_choices": {"config": {"strategies": ["ma_cross", "rsi_reversion"]}}}
            },
            resources=resources(url, symbols),
        )
        assert reopt.success
        reopt_s = time.perf_counter() - t
        decisions = count_decisions(url)
        print(f"{n} symbols: re-optimization {reopt_s:.1f} s, {decisions} decisions", file=sys.stderr, flush=True)
        day = (last_history + timedelta(days=1)).isoformat()
        t = time.perf_counter()
        daily = defs.resolve_job_def("daily_job").execute_in_process(
            instance=instance, partition_key=day, resources=resources(url, symbols)
        )
        assert daily.success
        daily_s = time.perf_counter() - t
        steps = step_seconds(instance, daily.run_id)
    finally:
        drop_scratch_database(url)
    row = {
        "symbols": n,
        "history_days": history,
        "history_s": round(history_s, 1),
        "reoptimize_s": round(reopt_s, 1),
        "reoptimize_s_per_symbol": round(reopt_s / n, 3),
        "reoptimize_decisions": decisions,
        "daily_s": round(daily_s, 2),
        "daily_s_per_symbol": round(daily_s / n, 4),
        "steps_s": steps,
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def count_decisions(url: str) -> int:
    """Walk-forward decisions stored (to show the re-optimization decided something)."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM analytics.strategy_choices").fetchone()
    return int(row[0]) if row else 0


def non_dbt_seconds(row: dict) -> float:
    """Seconds of the timed day's steps other than dbt's (whose start-up is a fixed cost)."""
    return sum(v for k, v in row["steps_s"].items() if not k.startswith("dbt_"))


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=100)
    parser.add_argument("--history", type=int, default=21, help="Days of history before the timed day.")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    small = measure(args.small, args.history)
    large = measure(args.large, args.history)
    print(
        json.dumps(
            {
                "symbols_small": args.small,
                "symbols_large": args.large,
                "seconds_small": small["daily_s"],
                "seconds_large": large["daily_s"],
                "per_symbol_ratio": round(large["daily_s_per_symbol"] / small["daily_s_per_symbol"], 3),
                "marginal_s_per_symbol": round(
                    (large["daily_s"] - small["daily_s"]) / max(args.large - args.small, 1), 3
                ),
                "non_dbt_per_symbol_ratio": round(
                    non_dbt_seconds(large) / args.large / (non_dbt_seconds(small) / args.small), 3
                ),
                "reoptimize_per_symbol_ratio": round(
                    large["reoptimize_s_per_symbol"] / small["reoptimize_s_per_symbol"], 3
                ),
                "reoptimize_s_per_symbol_small": small["reoptimize_s_per_symbol"],
                "reoptimize_s_per_symbol_large": large["reoptimize_s_per_symbol"],
                "history_days": args.history,
                "peak_rss_mb": peak_rss_mb(),
                "load_1m_start": round(load_start, 2),
                "load_1m_end": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()

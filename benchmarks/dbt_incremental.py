"""Cost of the daily dbt run as history grows: the incremental run for one new day, with 30 and 365 days held.

For each history length, a scratch database gets that many days of 1-minute bars for 3 symbols (sample
source) and a full dbt build; then one more day is loaded and the partitioned models are run for that day
alone, as the daily schedule does (`dbt build --select tag:partitioned --vars {min_date, max_date}`), timed
(median of --repeat runs of the same day; each run replaces the same window). Target: ratio <= 1.3.

    python benchmarks/dbt_incremental.py [--small 30] [--large 365] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from _scratch import create_scratch_database, drop_scratch_database  # noqa: E402

from fks_pipelines.defs.dbt.resources import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_connection  # noqa: E402
from fks_pipelines.lib.db.connect import connect  # noqa: E402
from fks_pipelines.lib.db.raw import replace_klines  # noqa: E402
from fks_pipelines.lib.sources.frame import LoadScope  # noqa: E402
from fks_pipelines.lib.sources.sample import sample_klines  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
DBT = [DBT_EXECUTABLE]
COMMON = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--quiet"]


def dbt(url: str, *args: str) -> float:
    started = time.perf_counter()
    with dbt_connection(url):
        subprocess.run([*DBT, *args, *COMMON], check=True)
    return time.perf_counter() - started


def load_days(url: str, first: date, days: int) -> None:
    with connect(url) as conn:
        for i in range(days):
            day = first + timedelta(days=i)
            frame = sample_klines(SYMBOLS, day, day + timedelta(days=1))
            replace_klines(conn, frame, LoadScope.for_day("spot", "1m", SYMBOLS, day.isoformat()), source="sample")


def measure(days: int, repeat: int) -> float:
    url = create_scratch_database(f"fks_bench_dbt_{days}")
    first = date(2024, 1, 1)
    t = time.perf_counter()
    load_days(url, first, days)
    dbt(url, "build")
    print(f"  {days} days of history loaded and built in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    new_day = first + timedelta(days=days)
    load_days(url, new_day, 1)
    window = json.dumps({"min_date": new_day.isoformat(), "max_date": (new_day + timedelta(days=1)).isoformat()})
    runs = [dbt(url, "build", "--select", "tag:partitioned", "--vars", window) for _ in range(repeat)]
    print(f"  {days} days: incremental run for {new_day}: {', '.join(f'{r:.2f}s' for r in runs)}", file=sys.stderr)
    drop_scratch_database(url)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=30)
    parser.add_argument("--large", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    small = measure(args.small, args.repeat)
    large = measure(args.large, args.repeat)
    print(
        json.dumps(
            {
                "days_small": args.small,
                "days_large": args.large,
                "seconds_small": round(small, 3),
                "seconds_large": round(large, 3),
                "ratio": round(large / small, 3),
            }
        )
    )


if __name__ == "__main__":
    main()

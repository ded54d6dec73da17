"""Cost of the daily dbt run as history grows: the runs for one new day, with 30 and 365 days held.

For each history length, a scratch database gets that many days of 1-minute bars for --symbols symbols
(sample source) and a full dbt build; then one more day is loaded and both daily dbt steps run as the daily job
does, each timed (median of --repeat runs; the day is re-loaded before each, as a re-run of the day would):
- the partitioned marts for that day alone (`dbt build --select tag:partitioned --vars {min_date, max_date}`,
  the dbt_daily_models asset): `seconds_*`, `ratio`;
- everything else (`dbt build --exclude tag:partitioned`, the dbt_models asset: staging and intermediate,
  the incremental int_symbol_coverage, dim_symbols, the scoped unique test; with fks_coverage_lag 0, as the
  history here was loaded seconds earlier): `models_seconds_*`, `models_ratio`.
Target: both ratios <= 1.3.

    python benchmarks/dbt_incremental.py [--small 30] [--large 365] [--repeat 3] [--symbols 3]
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

import _home  # noqa: E402, F401 - its own FKS_HOME and port, before anything reads the settings
from _scratch import create_scratch_database, drop_scratch_database  # noqa: E402

from fks_pipelines.defs.dbt.resources import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_connection  # noqa: E402
from fks_pipelines.lib.db.connect import connect  # noqa: E402
from fks_pipelines.lib.db.raw import replace_klines  # noqa: E402
from fks_pipelines.lib.klines import LoadScope  # noqa: E402
from fks_pipelines.lib.sources.sample import sample_klines  # noqa: E402

SYMBOLS = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "BNBUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "DOGEUSDT",
    "AVAXUSDT",
    "DOTUSDT",
    "LTCUSDT",
)
DBT = [DBT_EXECUTABLE]
# The history was loaded seconds before, not days: without this, int_symbol_coverage's lag for in-flight loads
# (var fks_coverage_lag, 10 minutes) would count all of it as just loaded and re-aggregate it every run.
STEADY = json.dumps({"fks_coverage_lag": "0 seconds"})
COMMON = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--quiet"]


def dbt(url: str, *args: str) -> float:
    started = time.perf_counter()
    with dbt_connection(url):
        subprocess.run([*DBT, *args, *COMMON], check=True)
    return time.perf_counter() - started


def load_days(url: str, first: date, days: int, symbols: tuple[str, ...]) -> None:
    with connect(url) as conn:
        for i in range(days):
            day = first + timedelta(days=i)
            frame = sample_klines(symbols, day, day + timedelta(days=1))
            replace_klines(conn, frame, LoadScope.for_day("spot", "1m", symbols, day.isoformat()), source="sample")


def measure(days: int, repeat: int, symbols: tuple[str, ...]) -> tuple[float, float]:
    """Median seconds of the partitioned run and of the unpartitioned run for one new day."""
    url = create_scratch_database(f"fks_bench_dbt_{days}")
    first = date(2024, 1, 1)
    t = time.perf_counter()
    load_days(url, first, days, symbols)
    dbt(url, "build")
    print(f"  {days} days of history loaded and built in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    new_day = first + timedelta(days=days)
    window = json.dumps({"min_date": new_day.isoformat(), "max_date": (new_day + timedelta(days=1)).isoformat()})
    daily, models = [], []
    for _ in range(repeat):
        load_days(url, new_day, 1, symbols)
        daily.append(dbt(url, "build", "--select", "tag:partitioned", "--vars", window))
        models.append(dbt(url, "build", "--exclude", "tag:partitioned", "--vars", STEADY))
    print(f"  {days} days: partitioned run for {new_day}: {', '.join(f'{r:.2f}s' for r in daily)}", file=sys.stderr)
    print(f"  {days} days: unpartitioned run: {', '.join(f'{r:.2f}s' for r in models)}", file=sys.stderr)
    drop_scratch_database(url)
    return statistics.median(daily), statistics.median(models)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=30)
    parser.add_argument("--large", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=3, help=f"1 to {len(SYMBOLS)} sample symbols")
    args = parser.parse_args()
    symbols = SYMBOLS[: max(1, min(args.symbols, len(SYMBOLS)))]
    small, models_small = measure(args.small, args.repeat, symbols)
    large, models_large = measure(args.large, args.repeat, symbols)
    print(
        json.dumps(
            {
                "days_small": args.small,
                "days_large": args.large,
                "symbols": len(symbols),
                "seconds_small": round(small, 3),
                "seconds_large": round(large, 3),
                "ratio": round(large / small, 3),
                "models_seconds_small": round(models_small, 3),
                "models_seconds_large": round(models_large, 3),
                "models_ratio": round(models_large / models_small, 3),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Ingest throughput: the project's load path against a bare COPY of the same rows, in the same run.

Both load the same N one-minute bars (sample source; default 2M) into an empty ``raw.binance_klines`` in a
scratch database on the embedded server (or FKS_DATABASE_URL's server):
- project: ``replace_klines`` from a polars frame (validation, scope check, CSV serialisation in chunks,
  DELETE of the scope, COPY, ingest_log row, one transaction);
- bare: psycopg ``COPY ... FROM STDIN`` of the same rows pre-serialised to an in-memory CSV (the floor).
Each is run ``--repeat`` times alternately; the median is reported. The last line is one JSON object.

    python benchmarks/ingest.py [--rows 2000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import _home  # noqa: E402, F401 - its own FKS_HOME and port, before anything reads the settings
from _scratch import create_scratch_database  # noqa: E402

from fks_pipelines.lib.db.connect import connect  # noqa: E402
from fks_pipelines.lib.db.raw import COPY_SQL, frame_to_csv, replace_klines  # noqa: E402
from fks_pipelines.lib.klines import LoadScope  # noqa: E402
from fks_pipelines.lib.sources.sample import sample_klines  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
BENCH_DB = "fks_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    url = create_scratch_database(BENCH_DB)
    days = -(-args.rows // (1440 * len(SYMBOLS)))
    start = date(2023, 1, 1)
    t0 = time.perf_counter()
    frame = sample_klines(SYMBOLS, start, start + timedelta(days=days)).head(args.rows)
    print(
        f"generated {frame.height:,} rows ({days} days x {len(SYMBOLS)} symbols) in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    scope = LoadScope("spot", "1m", SYMBOLS, first, first + timedelta(days=days))
    csv_bytes = frame_to_csv(frame, "sample")

    project_s, bare_s = [], []
    with connect(url) as conn:
        for i in range(args.repeat):
            conn.execute("TRUNCATE raw.binance_klines")
            conn.execute("CHECKPOINT")
            t = time.perf_counter()
            result = replace_klines(conn, frame, scope, source="sample")
            project_s.append(time.perf_counter() - t)
            assert result.rows_loaded == frame.height

            conn.execute("TRUNCATE raw.binance_klines")
            conn.execute("CHECKPOINT")
            t = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                view = memoryview(csv_bytes)
                for offset in range(0, len(view), 8 << 20):
                    copy.write(view[offset : offset + (8 << 20)])
            bare_s.append(time.perf_counter() - t)
            loaded = conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()[0]
            assert loaded == frame.height, loaded
            print(f"  round {i + 1}: project {project_s[-1]:.2f}s, bare COPY {bare_s[-1]:.2f}s", file=sys.stderr)

    project, bare = statistics.median(project_s), statistics.median(bare_s)
    print(
        json.dumps(
            {
                "rows": frame.height,
                "project_rows_per_s": round(frame.height / project),
                "bare_copy_rows_per_s": round(frame.height / bare),
                "ratio": round(bare / project, 3),
                "project_s": round(project, 3),
                "bare_copy_s": round(bare, 3),
                "repeat": args.repeat,
            }
        )
    )


if __name__ == "__main__":
    main()

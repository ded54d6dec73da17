"""pgvector search through the project's path (knowledge.search: HNSW cosine, iterative scans, point-in-time and
symbol filters) on N synthetic 384-d vectors clustered like real embeddings (lib/rag/synthetic.py).

Loads N single-chunk documents into a scratch database, builds the HNSW index (timed), then for each
ef_search runs the same queries with no filter and with a 10%-selective symbol filter, and compares with
exact search (numpy, same filters). The last line is one JSON object: build time, and per filter the p50/p95
latency and recall@10 at the chosen ef_search (the smallest tried that reaches recall 0.99).

    python benchmarks/vector_search.py [--n 200000] [--queries 200] [--ef 100,200,400] [--m 16] [--ef-construction 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import _home  # noqa: E402, F401 - its own FKS_HOME and port, before anything reads the settings
import numpy as np  # noqa: E402
from _scratch import create_scratch_database, drop_scratch_database  # noqa: E402
from pgvector.psycopg import register_vector  # noqa: E402

from fks_pipelines.lib.db import knowledge  # noqa: E402
from fks_pipelines.lib.db.connect import connect  # noqa: E402
from fks_pipelines.lib.rag.synthetic import clustered_vectors, queries_near  # noqa: E402

DIM, K, SYMBOLS = 384, 10, 10
T0 = datetime(2020, 1, 1, tzinfo=UTC)


def load(conn, vectors: np.ndarray, symbols: np.ndarray) -> None:
    n = len(vectors)
    with (
        conn.cursor() as cur,
        cur.copy("COPY knowledge.documents (id, key, kind, symbol, as_of, text) FROM STDIN") as copy,
    ):
        for i in range(n):
            copy.write_row(
                (f"d{i}", f"bench/{i}", "market_summary", symbols[i], T0 + timedelta(minutes=i), f"document {i}")
            )
    register_vector(conn)
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY knowledge.chunks (document_id, chunk_index, kind, symbol, as_of, start_char, end_char, text, model,"
            " model_version, embedding) FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(
            ["text", "int4", "text", "text", "timestamptz", "int4", "int4", "text", "text", "text", "vector"]
        )
        for i in range(n):
            copy.write_row(
                (
                    f"d{i}",
                    0,
                    "market_summary",
                    symbols[i],
                    T0 + timedelta(minutes=i),
                    0,
                    1,
                    "x",
                    "synthetic",
                    "1",
                    vectors[i],
                )
            )


def exact_top(vectors: np.ndarray, mask: np.ndarray | None, query: np.ndarray) -> set[str]:
    distance = 1.0 - vectors @ query
    if mask is not None:
        distance = np.where(mask, distance, np.inf)
    return {f"d{i}" for i in np.argpartition(distance, K)[:K]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", default="100,200,400", help="ef_search values to try, comma-separated")
    parser.add_argument("--m", type=int, default=knowledge.HNSW_M, help="HNSW m (default: the project's)")
    parser.add_argument(
        "--ef-construction", type=int, default=knowledge.HNSW_EF_CONSTRUCTION, help="(default: the project's)"
    )
    args = parser.parse_args()
    efs = [int(x) for x in args.ef.split(",")]

    rng = np.random.default_rng(1)
    vectors, _ = clustered_vectors(args.n, DIM, rng)
    symbols = np.array([f"S{i % SYMBOLS}" for i in range(args.n)])
    queries = queries_near(vectors, args.queries, rng)
    url = create_scratch_database("fks_bench_vectors")
    try:
        with connect(url) as conn:
            knowledge.ensure_chunk_table(conn, DIM)
            conn.execute(
                "DROP INDEX knowledge.chunks_embedding_hnsw"
            )  # build once, after loading (as a backfill would)
            t = time.perf_counter()
            load(conn, vectors, symbols)
            load_s = time.perf_counter() - t
            print(f"loaded {args.n:,} vectors in {load_s:.1f}s", file=sys.stderr)
            conn.execute("SET maintenance_work_mem = '2GB'")
            t = time.perf_counter()
            conn.execute(
                f"CREATE INDEX chunks_embedding_hnsw ON knowledge.chunks USING hnsw (embedding vector_cosine_ops)"
                f" WITH (m = {args.m}, ef_construction = {args.ef_construction})"
            )
            build_s = time.perf_counter() - t
            conn.execute("ANALYZE knowledge.chunks")
            print(f"HNSW build (m={args.m}, ef_construction={args.ef_construction}): {build_s:.1f}s", file=sys.stderr)
            as_of = T0 + timedelta(minutes=args.n)
            filters = {"none": (None, None), "symbol_10pct": (["S3"], symbols == "S3")}
            truth = {name: [exact_top(vectors, mask, q) for q in queries] for name, (_, mask) in filters.items()}
            results: dict[str, dict] = {}
            for name, (symbol_filter, _) in filters.items():
                per_ef = {}
                for ef in efs:
                    knowledge.search(conn, queries[0], K, as_of=as_of, symbols=symbol_filter, ef_search=ef)  # warm
                    latencies, recalls = [], []
                    for q, expected in zip(queries, truth[name], strict=True):
                        t = time.perf_counter()
                        hits = knowledge.search(conn, q, K, as_of=as_of, symbols=symbol_filter, ef_search=ef)
                        latencies.append((time.perf_counter() - t) * 1000)
                        recalls.append(len(expected & {h.document_id for h in hits}) / K)
                    per_ef[ef] = {
                        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                        "p95_ms": round(float(np.percentile(latencies, 95)), 2),
                        "recall_at_10": round(float(np.mean(recalls)), 4),
                    }
                    print(f"  filter={name:<13} ef_search={ef:<4} {per_ef[ef]}", file=sys.stderr)
                chosen = next((ef for ef in efs if per_ef[ef]["recall_at_10"] >= 0.99), efs[-1])
                results[name] = {"ef_search": chosen, **per_ef[chosen], "all": per_ef}
    finally:
        drop_scratch_database(url)
    print(
        json.dumps(
            {
                "n": args.n,
                "dim": DIM,
                "queries": args.queries,
                "load_s": round(load_s, 1),
                "hnsw_build_s": round(build_s, 1),
                "m": args.m,
                "ef_construction": args.ef_construction,
                **{f"{name}": {k: v for k, v in r.items() if k != "all"} for name, r in results.items()},
                "all": {name: r["all"] for name, r in results.items()},
            }
        )
    )


if __name__ == "__main__":
    main()

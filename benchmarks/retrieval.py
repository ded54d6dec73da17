"""Retrieval quality: plain-language questions about market days, signals and strategy outcomes, answered by
knowledge.hybrid_search (full-text + pgvector, reciprocal-rank fusion) and by vector-only knowledge.search (the
baseline), on the pipeline's own documents built from the offline sample.

Relevance is defined from the marts and analytics tables (returns, ranges, RSI, regimes, fired signals, the
walk-forward record), never from the documents' text: a question's relevant documents are the keys of the days
(or runs) whose numbers qualify. The thresholds are the descriptors' (fks_pipelines/lib/rag/documents.py),
since a question "a sharp drop" means what the documented word means.

- precision@5: relevant among the top 5, over min(5, number relevant) (a question with 2 relevant days can
  score 1.0); recall@10: relevant among the top 10 over the number relevant. Questions with no relevant
  document on the data are left out (and listed).
Last line: one JSON object. Target: hybrid precision@5 >= 0.8.

    python benchmarks/retrieval.py [--days 28] [--end 2024-05-29]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import _home  # noqa: E402, F401 - its own FKS_HOME and port, before anything reads the settings
from _scratch import create_scratch_database, drop_scratch_database  # noqa: E402

from fks_pipelines.lib.db import knowledge  # noqa: E402
from fks_pipelines.lib.db.connect import connect  # noqa: E402
from fks_pipelines.lib.rag import documents as d  # noqa: E402

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
STRATEGIES = ["ma_cross", "rsi_reversion", "bollinger_breakout"]

_DAY_KEY = (
    "'market_summary/' || m.market || '/' || m.symbol || '/' || to_char(m.bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
)
_DAYS = (
    "FROM marts.fct_ohlcv_1d m LEFT JOIN marts.fct_returns r USING (market, symbol, bucket)"
    " LEFT JOIN analytics.signals s USING (market, symbol, bucket)"
    " LEFT JOIN analytics.market_regimes g USING (market, symbol, bucket)"
)
_RANGE = "(m.high - m.low) / nullif(m.open, 0)"

# (question, SQL returning the relevant document keys, from the marts and analytics tables only)
QUESTIONS: list[tuple[str, str]] = [
    ("a sharp drop in price", f"SELECT {_DAY_KEY} {_DAYS} WHERE r.simple_return <= -{d.SHARP_MOVE}"),
    ("days with a strong rally", f"SELECT {_DAY_KEY} {_DAYS} WHERE r.simple_return >= {d.SHARP_MOVE}"),
    ("a wide range between the high and the low", f"SELECT {_DAY_KEY} {_DAYS} WHERE {_RANGE} >= {d.WIDE_RANGE}"),
    (
        "a quiet day in the market",
        f"SELECT {_DAY_KEY} {_DAYS} WHERE abs(r.simple_return) < {d.QUIET_RETURN} AND {_RANGE} < {d.QUIET_RANGE}",
    ),
    ("RSI oversold", f"SELECT {_DAY_KEY} {_DAYS} WHERE s.rsi_14 < {d.RSI_OVERSOLD}"),
    ("RSI overbought at the close", f"SELECT {_DAY_KEY} {_DAYS} WHERE s.rsi_14 > {d.RSI_OVERBOUGHT}"),
    ("a high-volatility regime", f"SELECT {_DAY_KEY} {_DAYS} WHERE g.regime LIKE '%%high_vol'"),
    ("a low-volatility regime", f"SELECT {_DAY_KEY} {_DAYS} WHERE g.regime LIKE '%%low_vol'"),
    *(
        (
            f"{strategy} signalled an entry",
            "SELECT 'signal_event/' || market || '/' || symbol || '/'"
            f" || to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '/{strategy}/entry' FROM analytics.signals"
            f" WHERE (strategy_signals -> '{strategy}' ->> 'entry')::bool",
        )
        for strategy in STRATEGIES
    ),
    (
        "the strategy beat buy and hold out of sample",
        "SELECT 'strategy_summary/' || market || '/' || symbol || '/' || run_id FROM analytics.strategy_choices"
        " WHERE oos_total_return > buy_and_hold_return",
    ),
]


def build(url: str, start: str, end: str) -> None:
    """The main job over the window on the offline sample, as the tests' pipeline fixture runs it."""
    from dagster import DagsterInstance
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from fks_pipelines.definitions import defs
    from fks_pipelines.defs.dbt.resources import dbt_resource
    from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, PostgresResource

    result = defs.resolve_job_def("all_assets_job").execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
        run_config={"ops": {"analytics__strategy_choices": {"config": {"strategies": STRATEGIES}}}},
        resources={
            "database": PostgresResource(url=url),
            "market_data": MarketDataResource(symbols=SYMBOLS),
            "dbt": dbt_resource(),
            "embedding_model": EmbeddingModelResource(device="cpu"),
        },
        raise_on_error=False,
    )
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        print(f"warning: the job had failed steps {failed}; measuring on what was built", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--end", default="2024-05-29", help="Last day of the window (the sample's epoch is fixed).")
    parser.add_argument("--url", help="Measure on an existing database instead of building a scratch one.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database (re-measure with --url).")
    args = parser.parse_args()
    from fks_pipelines.lib.rag.embedder import Embedder

    end = datetime.fromisoformat(args.end).replace(tzinfo=UTC)
    start = end - timedelta(days=args.days - 1)
    url = args.url or create_scratch_database("fks_bench_retrieval")
    try:
        if not args.url:
            print(f"building {args.days} days x {len(SYMBOLS)} symbols in {url.rsplit('/', 1)[-1]}", file=sys.stderr)
            build(url, f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}")
        model = Embedder(device="cpu")
        at = datetime.now(UTC)
        per_question, skipped = [], []
        with connect(url) as conn:
            n_documents = conn.execute("SELECT count(*) FROM knowledge.documents").fetchone()[0]
            for question, relevant_sql in QUESTIONS:
                relevant = {r[0] for r in conn.execute(relevant_sql).fetchall()}
                if not relevant:
                    skipped.append(question)
                    continue
                vector = model.encode([question])[0]
                hybrid = [h.key for h in knowledge.hybrid_search(conn, question, vector, 10, as_of=at)]
                ids = [h.document_id for h in knowledge.search(conn, vector, 10, as_of=at)]
                keys = dict(
                    conn.execute("SELECT id, key FROM knowledge.documents WHERE id = ANY(%s)", (ids,)).fetchall()
                )
                vector_only = [keys[i] for i in ids]
                row = {"question": question, "relevant": len(relevant)}
                for name, ranked in (("hybrid", hybrid), ("vector", vector_only)):
                    row[f"{name}_p5"] = len(set(ranked[:5]) & relevant) / min(5, len(relevant))
                    row[f"{name}_r10"] = len(set(ranked[:10]) & relevant) / len(relevant)
                per_question.append(row)
                print(
                    f"{question:<48} relevant {len(relevant):>3}  hybrid p@5 {row['hybrid_p5']:.2f} r@10 "
                    f"{row['hybrid_r10']:.2f}  vector p@5 {row['vector_p5']:.2f} r@10 {row['vector_r10']:.2f}"
                )
    finally:
        if not args.url and not args.keep:
            drop_scratch_database(url)
    mean = lambda k: round(statistics.fmean(r[k] for r in per_question), 3) if per_question else None  # noqa: E731
    print(
        json.dumps(
            {
                "symbols": len(SYMBOLS),
                "days": args.days,
                "documents": n_documents,
                "questions": len(per_question),
                "skipped_no_relevant": skipped,
                "hybrid_precision_at_5": mean("hybrid_p5"),
                "hybrid_recall_at_10": mean("hybrid_r10"),
                "vector_precision_at_5": mean("vector_p5"),
                "vector_recall_at_10": mean("vector_r10"),
                "target_precision_at_5": 0.8,
            }
        )
    )


if __name__ == "__main__":
    main()

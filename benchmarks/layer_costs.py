"""Seconds per asset after the marts, on real hourly history, at two window lengths: is each layer linear in days?

A scratch database per window gets the shared freqtrade BTC/ETH hourly bars straight into marts.fct_ohlcv_1h and
their daily rollup (the raw -> marts path is benchmarked elsewhere), one paper account, then each asset after the
marts in data-flow order, each timed on its own: strategy_choices (weekly decisions over the whole window), signals
and strategy state, market_regimes, knowledge/documents, recommendations/daily with the paper ledger, evaluation,
track_record, after a 30-day warm-up window that is not counted (numba compiles vectorbt's kernels on first
use). Embeddings are left out (their cost is per document, measured by benchmarks/embed.py). The last line
is one JSON object: per window, seconds per asset and per day, and the per-day ratio long/short per asset (about 1.0
when the asset is linear in days).

    python benchmarks/layer_costs.py [--short 120] [--long 365] [--first 2020-01-01]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from _scratch import create_scratch_database, drop_scratch_database  # noqa: E402
from dagster import DagsterInstance, materialize  # noqa: E402
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG  # noqa: E402

from fks_pipelines.defs.analytics.assets import market_regimes, signals, strategy_choices  # noqa: E402
from fks_pipelines.defs.analytics.resources import QuantResource  # noqa: E402
from fks_pipelines.defs.knowledge.assets import documents  # noqa: E402
from fks_pipelines.defs.recommendations.assets import daily_recommendations, evaluation, track_record  # noqa: E402
from fks_pipelines.defs.recommendations.resources import LLMResource, RecommenderResource  # noqa: E402
from fks_pipelines.defs.shared import (  # noqa: E402
    EmbeddingModelResource,
    MarketDataResource,
    NotifierResource,
    PostgresResource,
)
from fks_pipelines.lib.db.connect import connect  # noqa: E402
from fks_pipelines.lib.db.portfolio import import_accounts  # noqa: E402
from fks_pipelines.lib.portfolio.ledger import Account  # noqa: E402
from tests.lib.quant.real_hourly import load_marts  # noqa: E402

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
SHARED = ROOT.parent / "shared" / "data" / "binance"
STRATEGIES = ["ma_cross", "rsi_reversion"]


def run_window(first: date, days: int) -> dict[str, float]:
    """Seconds per asset over ``days`` days of bars from ``first``."""
    url = create_scratch_database(f"fks_layer_costs_{days}")
    try:
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        with connect(url) as conn:
            load_marts(conn, SHARED, SYMBOLS, start, start + timedelta(days=days))
            import_accounts(conn, [Account("bench", "personal", Decimal(100_000), start, [], mode="paper")], "spot")
        resources = {
            "database": PostgresResource(url=url),
            "market_data": MarketDataResource(symbols=SYMBOLS),
            "quant": QuantResource(),
            "embedding_model": EmbeddingModelResource(device="cpu"),
            "llm": LLMResource(),
            "recommender": RecommenderResource(),
            "notifier": NotifierResource(),
        }
        # The daily assets start after the choices' warm-up (10 days) so every day has a choice to trade.
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: (first + timedelta(days=10)).isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: (first + timedelta(days=days - 2)).isoformat(),
        }
        config = {"ops": {"analytics__strategy_choices": {"config": {"strategies": STRATEGIES}}}}
        seconds = {}
        instance = DagsterInstance.ephemeral()
        for name, asset, partitioned in (
            ("strategy_choices", strategy_choices, False),
            ("signals", signals, True),
            ("market_regimes", market_regimes, False),
            ("documents", documents, True),
            ("recommendations_daily", daily_recommendations, True),
            ("evaluation", evaluation, False),
            ("track_record", track_record, False),
        ):
            t = time.perf_counter()
            materialize(
                [asset],
                resources=resources,
                instance=instance,
                tags=tags if partitioned else None,
                run_config=config if name == "strategy_choices" else None,
            )
            seconds[name] = round(time.perf_counter() - t, 2)
            print(f"{days} days: {name} {seconds[name]} s", file=sys.stderr)
        return seconds
    finally:
        drop_scratch_database(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=120)
    parser.add_argument("--long", type=int, default=365)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2020, 1, 1))
    args = parser.parse_args()
    run_window(args.first, 30)  # numba's compilation and the imports' first calls, not counted
    short, long = run_window(args.first, args.short), run_window(args.first, args.long)
    ratio = {k: round((long[k] / args.long) / (short[k] / args.short), 2) if short[k] else None for k in short}
    print(
        json.dumps(
            {"days": [args.short, args.long], "seconds_short": short, "seconds_long": long, "per_day_ratio": ratio}
        )
    )


if __name__ == "__main__":
    main()

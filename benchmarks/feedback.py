"""Does the record that feeds back earn its place? The whole real history, with and without it, side by side.

One scratch database is backfilled through ``all_assets_job`` as benchmarks/backfill.py does it (a warm-up with no
account, then the tier accounts of examples/tiers_portfolio.yaml from --start to the data's last whole day) with
the feedback off (``RecommenderResource(feedback=False)``, the default). Its evaluation is kept. Then the same days
of ``recommendations/daily``, ``track_record`` and ``evaluation`` run again in the same database, on the same marts,
regimes, choices and signals, with the feedback on: the rules engine's confidence calibrated by the known outcomes
per (strategy, regime) (lib/recommend/feedback.py). The paper ledgers are replayed from the first day, so each
evaluation is of its own decisions.

Besides the accounts' returns and drawdowns (with the safeguards, as the product runs; and the 'unprotected'
baseline of the same decisions), the calibration itself is scored: the Brier score of the stored confidence of
every decision to hold against whether the symbol rose over the next 7 days (lower is better). A calibration that
works lowers it.

The last line is one JSON object: per account, off and on (total return, CAGR, Sharpe, max drawdown, turnover,
fees), the Brier scores, the seconds of each pass and ``helps`` (on beats off in Sharpe on most accounts without a
deeper drawdown on most). ``docs/evaluation.md`` publishes it.

    python benchmarks/feedback.py [--data DIR] [--symbols BTCUSDT,ETHUSDT] [--start 2018-01-01]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from backfill import History, history_arguments, peak_rss_mb  # noqa: E402  (its own FKS_HOME, partitions from 2017)
from dagster import materialize  # noqa: E402
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG  # noqa: E402

from fks_pipelines.defs.recommendations.assets import daily_recommendations, track_record  # noqa: E402
from fks_pipelines.defs.recommendations.assets import evaluation as evaluation_asset  # noqa: E402
from fks_pipelines.defs.recommendations.resources import LLMResource, RecommenderResource  # noqa: E402
from fks_pipelines.defs.shared import NotifierResource  # noqa: E402
from fks_pipelines.lib.db.connect import connect, one_row  # noqa: E402
from fks_pipelines.lib.db.recommendations import LONG_DUST, evaluation_table  # noqa: E402
from fks_pipelines.lib.sources.freqtrade import whole_days  # noqa: E402

METRICS = ("total_return", "cagr", "sharpe", "max_drawdown", "turnover", "fees")


def rerun(history: History, first: date, last: date, feedback: bool) -> float:
    """The recommendation, its track record and the evaluation over [first, last] again, feedback on or off."""
    began = time.perf_counter()
    materialize(
        [daily_recommendations, track_record, evaluation_asset],
        instance=history.instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()},
        resources=history.resources | {"recommender": RecommenderResource(feedback=feedback)},
        raise_on_error=True,
    )
    return time.perf_counter() - began


def evaluation(url: str) -> dict[str, dict[str, dict]]:
    """{account: {baseline: {metric: value}}} of the whole window."""
    with connect(url) as conn:
        rows = evaluation_table(conn, period="window")
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r["generator"] in ("rules", "llm") and r["baseline"] in ("recommendations", "unprotected", "buy_and_hold"):
            figures = {m: None if r[m] is None else round(float(r[m]), 4) for m in METRICS}
            out.setdefault(r["account"], {})[r["baseline"]] = figures
    return out


def brier(url: str) -> dict[str, float | int]:
    """The stored confidence of every decision to hold (per account and day) against a 7-day rise, scored."""
    with connect(url) as conn:
        n, score = one_row(
            conn.execute(
                "SELECT count(*), avg(power(r.confidence - (t.return_7d > 0)::int, 2))"
                " FROM recommendations.daily r"
                " JOIN recommendations.track_record t USING (decision_date, account, symbol)"
                " WHERE r.target_allocation > %s AND t.return_7d IS NOT NULL",
                (LONG_DUST,),
            )
        )
    return {"decisions": int(n), "brier": round(float(score), 5) if score is not None else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    history_arguments(parser)
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    held_from, held_to = whole_days(args.data, symbols, "1h")
    last = min(held_to, args.end or held_to)
    load_start = os.getloadavg()[0]
    history = History("fks_bench_feedback", args.data, symbols)
    history.resources |= {
        "llm": LLMResource(),
        "recommender": RecommenderResource(feedback=False),
        "notifier": NotifierResource(),
    }
    out: dict = {"data": str(args.data), "symbols": symbols, "first_day": str(args.start), "last_day": str(last)}
    try:
        print(f"warm-up {held_from} .. {args.start - timedelta(days=1)}, then {args.start} .. {last}", file=sys.stderr)
        history.backfill(held_from, args.start - timedelta(days=1))
        history.open_accounts(args.portfolio, symbols, args.start)
        out["backfill_off_s"] = round(history.backfill(args.start, last)[0], 1)
        off, off_brier = evaluation(history.url), brier(history.url)
        print(f"  feedback off: {json.dumps(off)}", file=sys.stderr, flush=True)
        out["rerun_on_s"] = round(rerun(history, args.start, last, feedback=True), 1)
        on, on_brier = evaluation(history.url), brier(history.url)
    finally:
        history.drop()
    out["accounts"] = {
        a: {
            "off": off[a].get("recommendations"),
            "on": on.get(a, {}).get("recommendations"),
            "off_unprotected": off[a].get("unprotected"),
            "on_unprotected": on.get(a, {}).get("unprotected"),
            "buy_and_hold": off[a].get("buy_and_hold"),
        }
        for a in sorted(off)
    }
    out["brier_off"], out["brier_on"] = off_brier, on_brier
    pairs = [(v["off"], v["on"]) for v in out["accounts"].values() if v["off"] and v["on"]]
    better = sum((b["sharpe"] or 0) > (a["sharpe"] or 0) for a, b in pairs)
    deeper = sum((b["max_drawdown"] or 0) < (a["max_drawdown"] or 0) - 1e-9 for a, b in pairs)
    out["sharpe_better_accounts"], out["deeper_drawdown_accounts"] = better, deeper
    out["helps"] = bool(pairs) and better > len(pairs) / 2 and deeper <= len(pairs) / 2
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_1m_start"], out["load_1m_end"] = round(load_start, 2), round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

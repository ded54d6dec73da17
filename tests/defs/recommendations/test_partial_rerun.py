"""Re-running past days of the daily recommendation never leaves the paper ledger, or the evaluation built on it,
silently different from a single clean run's (issue 22): a re-run of one past day removes the later days' fills,
records the hole, names the days to re-run in its metadata, and the evaluation refuses the ledger until they are
re-run; then ledger and evaluation equal the clean run's exactly. The small hand-made market of
test_paper_and_evaluation.py, through Dagster on the real embedded PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
from dagster import AssetKey, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fks_pipelines.defs.recommendations.assets import daily_recommendations, evaluation
from fks_pipelines.defs.recommendations.resources import LLMResource, RecommenderResource
from fks_pipelines.defs.shared import EmbeddingModelResource, MarketDataResource, NotifierResource, PostgresResource
from fks_pipelines.lib.db import recommendations
from tests.defs.recommendations.test_paper_and_evaluation import (
    ACCOUNT,
    DAYS,
    FIRST,
    LAST_DECISION,
    SYMBOLS,
    build_market,
    ledger,
    prices,
)

RESOURCES = {
    "market_data": MarketDataResource(symbols=SYMBOLS),
    "embedding_model": EmbeddingModelResource(device="cpu"),  # no chunks: never loaded
    "llm": LLMResource(),
    "recommender": RecommenderResource(),
    "notifier": NotifierResource(),
}


def run_daily(url: str, first: date, last: date):
    """One run of the daily recommendation over [first, last] (a partition range, as the CLI's --partition-range)."""
    result = materialize(
        [daily_recommendations],
        resources={**RESOURCES, "database": PostgresResource(url=url)},
        tags={ASSET_PARTITION_RANGE_START_TAG: str(first), ASSET_PARTITION_RANGE_END_TAG: str(last)},
    )
    assert result.success
    return result


def run_evaluation(url: str):
    return materialize(
        [evaluation], resources={**RESOURCES, "database": PostgresResource(url=url)}, raise_on_error=False
    )


def evaluation_rows(url: str) -> list[dict]:
    with psycopg.connect(url) as conn:
        return recommendations.evaluation_table(conn, None)


def holes(url: str) -> list[recommendations.LedgerHole]:
    with psycopg.connect(url) as conn:
        return recommendations.ledger_holes(conn, "spot")


def daily_metadata(result) -> dict:
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(["recommendations", "daily"])
    ]
    assert events
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def test_a_past_day_re_run_is_refused_until_the_named_days_are_re_run_then_equals_a_clean_run(databases):
    url = databases.create()
    try:
        build_market(url, prices())
        run_daily(url, FIRST, LAST_DECISION)
        assert run_evaluation(url).success
        clean_ledger, clean_evaluation = ledger(url), evaluation_rows(url)
        assert len(clean_ledger) >= 4 and clean_evaluation and holes(url) == []

        # Re-run one past day: the later days' fills are removed, the hole is recorded and named.
        day = DAYS[3]
        result = run_daily(url, day, day)
        shrunk = ledger(url)
        later = [t for t in clean_ledger if t[-1] > recommendations.decision_time(day) + timedelta(seconds=1)]
        assert later, "the test needs fills after the re-run day"
        assert shrunk == [t for t in clean_ledger if t not in later]
        (hole,) = holes(url)
        assert (hole.account, hole.first, hole.last) == (ACCOUNT, day + timedelta(days=1), LAST_DECISION)
        assert sorted(hole.removed) == sorted(t[0] for t in later)
        metadata = daily_metadata(result)
        command = f"--select recommendations/daily --partition-range {DAYS[4]}...{LAST_DECISION}"
        assert metadata["rerun"].endswith(command)
        assert metadata["ledger_holes"] == [
            {"account": ACCOUNT, "from": str(DAYS[4]), "to": str(LAST_DECISION), "removed": hole.removed}
        ]
        assert sorted(metadata["run_removed_fills"][ACCOUNT]) == sorted(hole.removed)

        # The evaluation refuses, naming the account and the days; the previous evaluation stays.
        refused = run_evaluation(url)
        assert not refused.success
        message = str(refused.get_step_failure_events()[0].event_specific_data.error.message)
        assert f"{ACCOUNT} from {DAYS[4]} to {LAST_DECISION}" in message and command in message
        assert evaluation_rows(url) == clean_evaluation

        # A re-run of an earlier day moves the hole's start back; one that starts inside the hole does not fill it
        # (its days were decided on the incomplete ledger).
        result = run_daily(url, DAYS[1], DAYS[1])
        assert [(h.account, h.first, h.last) for h in holes(url)] == [(ACCOUNT, DAYS[2], LAST_DECISION)]
        assert daily_metadata(result)["rerun"].endswith(f"--partition-range {DAYS[2]}...{LAST_DECISION}")
        run_daily(url, DAYS[8], LAST_DECISION)
        assert [(h.account, h.first) for h in holes(url)] == [(ACCOUNT, DAYS[2])]
        assert not run_evaluation(url).success
        assert ledger(url) != clean_ledger

        # Re-running the named days fills the hole: ledger and evaluation equal the clean run's exactly.
        run_daily(url, DAYS[2], LAST_DECISION)
        assert holes(url) == []
        assert ledger(url) == clean_ledger
        assert run_evaluation(url).success
        assert evaluation_rows(url) == clean_evaluation

        # A re-run of the whole range equals the clean run too, and leaves no hole.
        result = run_daily(url, FIRST, LAST_DECISION)
        assert daily_metadata(result)["rerun"] == "-" and holes(url) == []
        assert ledger(url) == clean_ledger
        assert run_evaluation(url).success
        assert evaluation_rows(url) == clean_evaluation
    finally:
        databases.drop(url)

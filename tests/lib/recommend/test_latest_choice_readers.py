"""One latest-choice ranking for every reader (issue 23): when two runs decide the same ``decided_at`` for a symbol,
the choice of the run that materialized last is the one the analytics readers, the recommendation's market inputs
and the knowledge documents (built, stored and read back by key and time) all see, whatever the run ids' order;
re-running the other configuration makes its choice the one they all see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fks_pipelines.lib.db import analytics, knowledge
from fks_pipelines.lib.db.recommendations import decision_time
from fks_pipelines.lib.rag.build import build_documents
from fks_pipelines.lib.recommend.inputs import market_inputs
from tests.lib.quant.real_hourly import MART_DDL

MARKET, SYMBOL = "spot", "BTCUSDT"
DECIDED = datetime(2024, 5, 6, tzinfo=UTC)  # a Monday: the decision both runs make
DAY = (DECIDED + timedelta(days=2)).date()  # the recommendation's day, after the decision


def record(conn, run_id: str) -> None:
    """Materialize run ``run_id`` (again): it becomes the latest run to have decided."""
    analytics.record_run(
        conn,
        run_id,
        fingerprint=None,
        code_version="t",
        bar_interval="1h",
        data_start=DECIDED - timedelta(days=30),
        data_end=DECIDED,
        objective="sharpe",
        config={"run": run_id},
    )


def decide(conn, run_id: str, strategy: str, params: dict) -> None:
    record(conn, run_id)
    analytics.insert_choice(
        conn,
        run_id,
        MARKET,
        analytics.StrategyChoice(
            symbol=SYMBOL,
            strategy=strategy,
            params=params,
            objective="sharpe",
            oos_windows=1,
            oos_total_return=0.01,
            oos_sharpe=1.0,
            oos_max_drawdown=-0.02,
            oos_trades=3.0,
            buy_and_hold_return=0.0,
            decided_at=DECIDED,
        ),
    )


def what_every_reader_sees(conn) -> dict[str, str]:
    at = decision_time(DAY)
    seen = {
        "latest_choices": analytics.latest_choices(conn, MARKET, [SYMBOL], at)[SYMBOL]["strategy"],
        "latest_choice": analytics.latest_choice(conn, MARKET, SYMBOL, at)[0],
        "market_inputs": market_inputs(conn, MARKET, [SYMBOL], DAY)[SYMBOL]["strategy"]["strategy"],
    }
    window = (DECIDED - timedelta(days=1), DECIDED + timedelta(days=1))
    summaries = [d for d in build_documents(conn, MARKET, [SYMBOL], "1h", *window) if d.kind == "strategy_summary"]
    assert len(summaries) == 1  # one decision time, one document, whichever runs decided it
    seen["document_built"] = summaries[0].metadata["strategy"]
    knowledge.replace_documents(conn, summaries, knowledge.DocumentScope(kinds=["strategy_summary"]))
    stored = knowledge.latest_document(conn, SYMBOL, "strategy_summary", at)
    assert stored is not None
    seen["document_stored"] = stored.metadata["strategy"]
    return seen


def test_every_reader_takes_the_latest_run_s_choice_of_a_re_decided_time(conn):
    with conn.transaction():
        conn.execute(MART_DDL)  # the marts dbt builds, as tables: a close on the recommendation's day
        conn.execute(
            "INSERT INTO marts.fct_ohlcv_1d VALUES (%s, %s, %s, 100, 101, 99, 100.5, 10, 24, '1h')",
            (MARKET, SYMBOL, datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)),
        )
    # "run-z" decides first; "run-a" re-decides the same time later. Ordering by run id would pick run-z.
    decide(conn, "run-z", "ma_cross", {"fast": 5, "slow": 20})
    decide(conn, "run-a", "rsi_reversion", {"window": 14})
    assert set(what_every_reader_sees(conn).values()) == {"rsi_reversion"}
    # Materializing run-z's configuration again makes it the latest run: every reader follows.
    record(conn, "run-z")
    assert set(what_every_reader_sees(conn).values()) == {"ma_cross"}

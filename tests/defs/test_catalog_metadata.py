"""What the catalog shows is true and complete: every table asset of the platform's own layers names its table,
its columns and its rows; a daily partition's metadata describes that day, and the run's totals say so (run_*)."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
from dagster import TableSchema

from tests.defs.conftest import DAILY_ROWS_AFTER_PIPELINE, ROWS_AFTER_PIPELINE, SYMBOLS
from tests.defs.conftest import OWN_SCHEMAS as OWN_LAYERS

DAYS = [date(2024, 5, 1) + timedelta(days=i) for i in range(24)]


def _events(result):
    return [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]


def test_every_table_asset_reports_its_table_columns_and_rows(pipeline):
    url, result = pipeline
    events = _events(result)
    own = [m for m in events if m.asset_key.path[0] in OWN_LAYERS]
    assert {m.asset_key.to_user_string() for m in own} >= {
        "analytics/strategy_choices",
        "analytics/signals",
        "analytics/market_regimes",
        "knowledge/documents",
        "knowledge/document_embeddings",
        "recommendations/daily",
        "recommendations/track_record",
        "recommendations/evaluation",
        "portfolio/profit_splits",
    }
    with psycopg.connect(url) as conn:
        for m in own:
            table = m.metadata["dagster/table_name"].value
            assert table.split(".")[0] == m.asset_key.path[0], (m.asset_key, table)  # schema = the layer's word
            schema = m.metadata["dagster/column_schema"].schema
            assert isinstance(schema, TableSchema) and schema.columns, m.asset_key
            (columns,) = conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema || '.' || table_name = %s",
                (table,),
            ).fetchone()
            assert len(schema.columns) == columns, table
            rows = m.metadata["dagster/row_count"].value
            assert isinstance(rows, int) and rows >= 0, m.asset_key
            if m.partition is None and m.asset_key.path[0] != "knowledge":  # tables no later step writes
                assert rows == ROWS_AFTER_PIPELINE[table], table  # as the run left it (later tests write too)


def test_each_daily_partition_describes_its_own_day_and_run_totals_are_labelled(pipeline):
    _, result = pipeline
    events = _events(result)
    by_key: dict[str, dict[str, dict]] = {}
    for m in events:
        if m.partition is not None:
            by_key.setdefault(m.asset_key.to_user_string(), {})[m.partition] = m.metadata
    days = [d.isoformat() for d in DAYS]
    for key in ("analytics/signals", "knowledge/documents", "recommendations/daily"):
        assert sorted(by_key[key]) == days, key
    # As the run left them: later tests write to the same database.
    signals = DAILY_ROWS_AFTER_PIPELINE["analytics.signals"]
    documents = DAILY_ROWS_AFTER_PIPELINE["knowledge.documents"]
    daily = DAILY_ROWS_AFTER_PIPELINE["recommendations.daily"]
    for day in days:
        meta = by_key["analytics/signals"][day]
        assert meta["dagster/row_count"].value == signals[day] == len(SYMBOLS)
        assert {r.data["symbol"] for r in meta["signals"].value.records} == set(SYMBOLS)
        assert meta["run_rows"].value == sum(signals.values()) and meta["run_days"].value == len(days)
        doc_meta = by_key["knowledge/documents"][day]
        assert doc_meta["dagster/row_count"].value == doc_meta["documents"].value == documents.get(day, 0)
        assert doc_meta["documents_market_summary"].value == len(SYMBOLS)
        assert doc_meta["run_documents"].value == sum(documents.get(d, 0) for d in days)
        rec = by_key["recommendations/daily"][day]
        assert rec["dagster/row_count"].value == daily.get(day, 0) == len(rec["recommendations"].value.records)
        assert rec["run_days"].value == len(days)
    # A partition's rows are not the run's: the 24-day run loaded 24 times one day's signals.
    assert by_key["analytics/signals"][days[0]]["run_rows"].value == len(days) * len(SYMBOLS)
    # Numbers the Plots tab can chart, under the same key every materialization.
    choices = next(m for m in events if m.asset_key.to_user_string() == "analytics/strategy_choices").metadata
    assert isinstance(choices["test_sharpe_mean"].value, float)
    assert choices["test_windows"].value == len(SYMBOLS)  # the first decision's test week ended, the last's not yet
    embeddings = next(m for m in events if m.asset_key.to_user_string() == "knowledge/document_embeddings").metadata
    assert embeddings["documents_embedded"].value == sum(documents.values())

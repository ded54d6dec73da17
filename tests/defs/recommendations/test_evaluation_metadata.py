"""The evaluation's catalog: its table, columns and rows, the evaluation as a typed table, and per account and
baseline numbers the Plots tab charts (the market and the paper account of test_paper_and_evaluation)."""

from __future__ import annotations

import math

import psycopg

from fks_pipelines.lib.recommend.evaluation import BASELINES
from tests.defs.recommendations.test_paper_and_evaluation import ACCOUNT, build_market, prices, run


def test_the_evaluation_reports_its_catalog_a_typed_table_and_numbers_per_baseline(databases):
    url = databases.create()
    try:
        build_market(url, prices())
        result = run(url)
        assert result.success
        (meta,) = [m.metadata for m in result.asset_materializations_for_node("recommendations__evaluation")]
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT baseline, total_return, sharpe FROM recommendations.evaluation WHERE account = %s", (ACCOUNT,)
            ).fetchall()
            (count,) = conn.execute("SELECT count(*) FROM recommendations.evaluation").fetchone()
        assert meta["dagster/table_name"].value == "recommendations.evaluation"
        assert meta["dagster/row_count"].value == count == len(meta["evaluation"].value.records) > 0
        assert {c.name for c in meta["dagster/column_schema"].schema.columns} >= {"account", "baseline", "sharpe"}
        types = {c.name: c.type for c in meta["evaluation"].value.schema.columns}
        assert types["total_return"] == "float" and types["n_decisions"] == "int" and types["baseline"] == "string"
        assert {baseline for baseline, _, _ in rows} == set(BASELINES)
        for baseline, total_return, sharpe in rows:
            assert meta[f"total_return_{ACCOUNT}_{baseline}"].value == float(total_return)
            plotted = meta[f"sharpe_{ACCOUNT}_{baseline}"].value
            assert math.isnan(plotted) if sharpe is None else plotted == float(sharpe)
    finally:
        databases.drop(url)

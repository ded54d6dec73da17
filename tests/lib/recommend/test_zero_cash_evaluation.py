"""A paper account with zero cash (which import accepts) is evaluated as flat: every number finite, its ratios
None; and the evaluation store never writes a NaN row (the previous evaluation stays whole)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from fks_pipelines.lib.db.recommendations import EVALUATION_COLUMNS, evaluation_table, replace_evaluation
from fks_pipelines.lib.errors import FksError
from fks_pipelines.lib.recommend.evaluation import evaluate, evaluation_rows

DAYS = [date(2024, 12, 29) + timedelta(days=i) for i in range(6)]  # across a year end: window and per-year rows
PRICES = {"BTCUSDT": {d: (100.0 + i, 101.0 + i) for i, d in enumerate(DAYS)}}


def zero_cash_rows() -> list[dict]:
    curves = evaluate(
        DAYS,
        ["BTCUSDT"],
        PRICES,
        cash=0.0,
        positions={},
        trades=[],
        strategy_positions={},
        n_decisions=3,
        unprotected={},
    )
    return evaluation_rows(curves, "broke", "rules")


def test_a_zero_cash_account_is_flat_with_no_ratios_and_no_nan():
    rows = zero_cash_rows()
    assert {r["baseline"] for r in rows} == {"recommendations", "unprotected", "cash", "buy_and_hold", "strategy_only"}
    assert {r["period"] for r in rows} == {"window", "2024", "2025"}
    for r in rows:
        assert all(not (isinstance(r[c], float) and not math.isfinite(r[c])) for c in EVALUATION_COLUMNS), r
        assert (r["total_return"], r["max_drawdown"], r["sharpe"], r["sortino"], r["cagr"]) == (
            0.0,
            0.0,
            None,
            None,
            None,
        )


def test_the_store_refuses_a_nan_row_and_keeps_the_previous_evaluation(conn):
    rows = zero_cash_rows()
    replace_evaluation(conn, ["broke"], rows)
    before = evaluation_table(conn, None)
    assert len(before) == len(rows)
    bad = [dict(r) for r in rows]
    bad[-1]["max_drawdown"] = float("nan")
    with pytest.raises(FksError, match=r"broke .*max_drawdown not finite"):
        replace_evaluation(conn, ["broke"], bad)
    assert evaluation_table(conn, None) == before

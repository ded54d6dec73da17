"""Each act of a guard on a stored recommendation is one recommendations.guards row with its reason, replaced with
the day's recommendation and read back by the status, the post and `fks explain`."""

from __future__ import annotations

from datetime import timedelta

from fks_pipelines.lib.db.recommendations import guard_acts, last_decision_day, store_day
from fks_pipelines.lib.recommend.generate import generate
from tests.lib.recommend.test_guarding import with_guards
from tests.lib.recommend.test_strategy_state_following import T0, context


def test_each_act_is_a_row_with_its_reason_and_a_rerun_replaces_them(conn):
    day = (T0 - timedelta(days=1)).date()
    halted = generate(with_guards(context("long", 0.0), [14_000, 10_100, 10_000]), None)
    assert halted.guard_acts
    store_day(conn, day, [(halted, T0)])
    rows = guard_acts(conn, since=day)
    assert [(r["account"], r["guard"], r["action"], r["symbol"]) for r in rows] == [
        ("acct", "max_drawdown", "block_entry", None)
    ]
    assert "below its 30-day peak" in rows[0]["reason"] and rows[0]["until"] is not None
    assert last_decision_day(conn) == day
    free = generate(context("long", 0.0), None)  # the same day decided again, with nothing guarded
    store_day(conn, day, [(free, T0)])
    assert guard_acts(conn, since=day) == [] and guard_acts(conn, account="ACCT") == []

"""The ledger store: an account's state at a point in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fks_pipelines.lib.db.portfolio import account_states, account_states_at, import_accounts
from fks_pipelines.lib.portfolio.ledger import Account, Trade


def test_states_at_many_times_from_one_replay_equal_the_state_at_each_time(conn):
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    trades = [
        Trade(
            f"t{i}",
            "BTCUSDT" if i % 2 else "ETHUSDT",
            "buy" if i % 3 else "sell",
            Decimal("0.01"),
            Decimal(100 + i),
            Decimal("0.1"),
            t0 + timedelta(days=i, hours=1),
        )
        for i in range(1, 12)
    ]
    accounts = [
        Account("a", "personal", Decimal(10_000), t0, trades, mode="paper"),
        Account("b", "personal", Decimal(500), t0 + timedelta(days=5), trades[6:]),
    ]
    import_accounts(conn, accounts, "spot")
    times = [t0 + timedelta(days=d) for d in range(0, 14)]
    at_once = account_states_at(conn, times)
    for at in times:
        assert at_once[at] == account_states(conn, at), at
    assert at_once[times[-1]][0].positions != {}  # the replay reached positions, not only cash


def test_an_accounts_protections_and_prop_firm_rules_are_kept_and_replaced_by_a_reimport(conn):
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rules = {"daily_loss_limit": 0.05, "max_drawdown": 0.1, "drawdown": "trailing"}
    import_accounts(
        conn, [Account("p", "prop_firm", Decimal(1000), t0, [], "paper", {"cooldown_days": 3}, rules)], "spot"
    )
    (state,) = account_states(conn, t0)
    assert (state.protections, state.prop_firm) == ({"cooldown_days": 3}, rules)
    assert account_states_at(conn, [t0])[t0] == [state]
    import_accounts(conn, [Account("p", "prop_firm", Decimal(1000), t0, [], "paper")], "spot")
    (state,) = account_states(conn, t0)
    assert (state.protections, state.prop_firm) == (None, None)

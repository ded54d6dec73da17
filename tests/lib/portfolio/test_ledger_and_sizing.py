"""The ledger file's validation (nothing partial), tiers, deterministic sizing and the profit split."""

from __future__ import annotations

import json
import textwrap

import pytest

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.portfolio.ledger import read_ledger
from fks_pipelines.lib.portfolio.sizing import Limits, Proposal, limits, profit_split, size, tier_for

SYMBOLS = {"BTCUSDT", "ETHUSDT"}


def ledger(tmp_path, body: str, name: str = "p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return read_ledger(path, SYMBOLS, existing={"acct"})


def test_a_valid_yaml_ledger(tmp_path):
    (account,) = ledger(
        tmp_path,
        """
        accounts:
          - name: acct
            kind: prop_firm
            cash: 1000
            cash_at: 2024-01-01T00:00:00Z
            trades:
              - {id: t1, symbol: btcusdt, side: buy, quantity: 0.01, price: 50000, fee: 0.5, at: 2024-01-02T00:00:00Z}
              - {id: t2, symbol: BTCUSDT, side: sell, quantity: 0.01, price: 51000, at: "2024-01-03"}
    """,
    )
    assert account.kind == "prop_firm" and [t.trade_id for t in account.trades] == ["t1", "t2"]
    assert account.trades[0].symbol == "BTCUSDT" and str(account.trades[0].quantity) == "0.01"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("accounts: []", "non-empty 'accounts' list"),
        ("accounts:\n  - {name: a, cash: -5}", "negative cash -5"),
        ("accounts:\n  - {name: a, kind: hedge}", "kind must be one of"),
        (
            "accounts:\n  - {name: a, cash: 100, trades:"
            " [{id: t, symbol: DOGEUSDT, side: buy, quantity: 1, price: 1, at: 2024-01-01}]}",
            "unknown symbol 'DOGEUSDT'",
        ),
        (
            "accounts:\n  - {name: a, cash: 10000, trades:"
            " [{id: t, symbol: BTCUSDT, side: buy, quantity: 0.1, price: 100, at: 2024-01-01},"
            " {id: t, symbol: BTCUSDT, side: buy, quantity: 0.1, price: 100, at: 2024-01-02}]}",
            "duplicate trade id 't'",
        ),
        (
            "accounts:\n  - {name: a, cash: 100, trades:"
            " [{id: t, symbol: BTCUSDT, side: sell, quantity: 1, price: 1, at: 2024-01-01}]}",
            "sells more BTCUSDT than the account holds",
        ),
        (
            "accounts:\n  - {name: a, cash: 100, trades:"
            " [{id: t, symbol: BTCUSDT, side: buy, quantity: 1, price: 500, at: 2024-01-01}]}",
            "spends more cash than the account has",
        ),
        (
            "accounts:\n  - {name: a, cash: 100, trades:"
            " [{id: t, symbol: BTCUSDT, side: buy, quantity: 0, price: 5, at: 2024-01-01}]}",
            "must be positive",
        ),
        ("accounts:\n  - {name: a}\n  - {name: a}", "duplicate account 'a'"),
        ("accounts: [unclosed", "not valid YAML"),
    ],
)
def test_bad_ledgers_are_rejected_with_where(tmp_path, body, message):
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace("[", r"\[")) as caught:
        ledger(tmp_path, body)
    assert str(tmp_path / "p.yaml") in str(caught.value)


def test_csv_trades_need_known_accounts(tmp_path):
    good = ledger(
        tmp_path,
        "account,trade_id,symbol,side,quantity,price,fee,executed_at\nacct,x1,ETHUSDT,buy,1,3000,3,2024-02-01T00:00:00Z\n",
        "t.csv",
    )
    assert list(good) == ["acct"] and good["acct"][0].price == 3000
    with pytest.raises(BadInputError, match="row 1: unknown account 'nobody'"):
        ledger(
            tmp_path,
            "account,trade_id,symbol,side,quantity,price,fee,executed_at\nnobody,x1,ETHUSDT,buy,1,3000,3,2024-02-01\n",
            "t.csv",
        )


def test_tiers_go_from_conservative_to_aggressive():
    assert tier_for(100).style == "conservative" and tier_for(1_000_000).style == "aggressive"
    assert [tier_for(e).name for e in (999, 1_000, 50_000, 250_000)] == ["micro", "small", "medium", "large"]
    assert limits(50_000, "prop_firm").risk_per_trade == 0.005 and limits(50_000, "personal").risk_per_trade == 0.01


LIM = Limits(tier_for(50_000), 0.01, 0.20)


def sized(action="buy", target=0.5, entry=100.0, stop=95.0, take=110.0, current=0.0, cash=1.0, vol=0.01):
    return size(
        Proposal(action, target, entry, stop, take),
        price=100.0,
        daily_volatility=vol,
        current_allocation=current,
        cash_share=cash,
        lim=LIM,
    )


def test_sizing_caps_and_records_each_rule():
    p, clamps = sized()
    # risk cap: 1% of equity to a 5% stop allows 20%; the tier allows 20%; the volatility cap 2%/(2.326*1%) = 86%.
    assert p.target_allocation == 0.2 and [c["rule"] for c in clamps] == ["tier medium: at most 20% per position"]
    p, clamps = sized(stop=99.0)  # a 1% stop: risk allows 100%... no: tier caps at 20% first
    assert p.target_allocation == 0.2
    p, clamps = sized(target=0.15, stop=90.0)  # 10% stop: risk allows 10%
    assert p.target_allocation == 0.1 and clamps[-1]["rule"].startswith("risk per trade")
    p, clamps = sized(target=0.15, vol=0.1)  # 10% daily sigma: 2%/(2.326*10%) = 8.6%
    assert p.target_allocation == pytest.approx(0.085985, abs=1e-6) and clamps[-1]["rule"].startswith("volatility cap")
    p, _ = sized(target=0.15, cash=0.03)
    assert p.target_allocation == 0.03
    p, clamps = sized(action="hold", target=0.5, current=0.07)
    assert p.target_allocation == 0.07 and clamps[0]["rule"] == "hold keeps the current allocation"
    p, _ = sized(action="sell", target=0.4, current=0.1)
    assert p.target_allocation == 0.1
    p, clamps = sized(entry=1_000.0, stop=None, take=None)
    assert p.entry == 100.0 and p.stop_loss == pytest.approx(98.0) and p.take_profit == pytest.approx(103.0)
    assert [c["field"] for c in clamps][:3] == ["entry", "stop_loss", "take_profit"]


def test_profit_split_moves_half_of_a_profit_and_nothing_of_a_loss():
    assert profit_split(10_000, 11_500, 500) == (1_000, 500.0)
    assert profit_split(10_000, 9_000, 0) == (-1_000, 0.0)


def test_non_finite_or_absurd_stops_and_take_profits_are_clamped_and_recorded_as_json():
    for action in ("buy", "hold", "sell"):
        p, clamps = sized(action=action, target=0.1, current=0.1, take=float("inf"), stop=1e308)
        assert p.stop_loss == pytest.approx(98.0) and p.take_profit == pytest.approx(103.0), action
        assert {c["field"]: c["from"] for c in clamps if c["field"] != "target_allocation"} == {
            "stop_loss": 1e308,
            "take_profit": "inf",
        }
        json.dumps(clamps, allow_nan=False)  # PostgreSQL's jsonb has no Infinity
    p, clamps = sized(stop=0.001, take=1_000.0)  # 99.999% below, 10x above: outside the bounds
    assert (p.stop_loss, p.take_profit) == (pytest.approx(98.0), pytest.approx(103.0)) and len(clamps) == 3
    p, _ = sized(
        target=float("nan"), entry=float("inf"), stop=None, take=None, vol=0.9
    )  # huge sigma: defaults stay in bounds
    assert p.entry == 100.0 and p.stop_loss == pytest.approx(10.0) and p.take_profit == pytest.approx(300.0)


def test_the_number_of_trades_is_bounded(tmp_path):
    from fks_pipelines.lib.portfolio.ledger import MAX_TRADES

    trades = ", ".join(["{}"] * (MAX_TRADES + 1))
    with pytest.raises(BadInputError, match=f"{MAX_TRADES + 1:,} trades: at most {MAX_TRADES:,} per file"):
        ledger(tmp_path, f"accounts:\n  - {{name: a, cash: 1, trades: [{trades}]}}\n")


def test_protections_and_prop_firm_rules_in_the_portfolio_file(tmp_path):
    (account,) = ledger(
        tmp_path,
        """
        accounts:
          - name: prop
            kind: prop_firm
            cash: 1000
            protections: {max_drawdown: 0.15, stoploss_scope: account}
            prop_firm: {daily_loss_limit: 0.05, max_drawdown: 0.1, drawdown: trailing, profit_target: 0.1}
        """,
    )
    assert account.protections == {"max_drawdown": 0.15, "stoploss_scope": "account"}
    assert account.prop_firm == {
        "daily_loss_limit": 0.05,
        "max_drawdown": 0.1,
        "drawdown": "trailing",
        "profit_target": 0.1,
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("protections: {max_dd: 0.2}", r"p.yaml: account 1 \(a\): unknown protection"),
        ("protections: {cooldown_days: -1}", "cooldown_days must be a whole number of days"),
        ("protections: [1]", "protections must be a mapping"),
        ("prop_firm: {daily_loss_limit: 0.05, max_drawdown: 0.1}", "prop_firm rules need kind: prop_firm"),
    ],
)
def test_bad_protections_are_one_line_errors_naming_the_account(tmp_path, extra, message):
    with pytest.raises(BadInputError, match=message):
        ledger(tmp_path, f"accounts:\n  - name: a\n    cash: 10\n    {extra}\n")


def test_the_split_month_is_the_last_complete_one():
    from datetime import UTC, datetime

    from fks_pipelines.lib.portfolio.sizing import split_month

    mid = datetime(2024, 5, 17, tzinfo=UTC)
    assert split_month(mid) == (datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC))
    last = datetime(2024, 5, 31, tzinfo=UTC)  # its close ends May
    assert split_month(last) == (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))
    january = datetime(2024, 1, 3, tzinfo=UTC)
    assert split_month(january) == (datetime(2023, 12, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))

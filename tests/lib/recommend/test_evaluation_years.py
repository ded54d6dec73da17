"""The evaluation per calendar year: each year's row is the whole curve restricted to that year's closes."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from fks_pipelines.lib.portfolio.paper import Target
from fks_pipelines.lib.recommend.evaluation import Curve, by_year, evaluation_rows, metrics, simulated_curve


def _curve() -> Curve:
    rng = np.random.default_rng(7)
    days = [date(2019, 12, 20) + timedelta(days=i) for i in range(420)]  # 2019-12-20 .. 2021-02-11
    prices = {"BTCUSDT": {}}
    price = 100.0
    for d in days:
        o = price
        price *= float(np.exp(rng.normal(0, 0.03)))
        prices["BTCUSDT"][d] = (o, price)
    # Buy on the first day, sell mid-2020, buy again in 2021: fills (and fees) in two different years.
    targets = {
        days[0]: [Target("BTCUSDT", "buy", 1.0)],
        date(2020, 6, 30): [Target("BTCUSDT", "sell", 0.0)],
        date(2021, 1, 10): [Target("BTCUSDT", "buy", 0.5)],
    }
    return simulated_curve("strategy_only", days, prices, 10_000.0, targets)


def test_the_years_chain_to_the_whole_window_and_split_its_fees():
    curve = _curve()
    years = by_year(curve)
    assert [y.days[-1].year for y in years] == [2019, 2020, 2021]
    # Consecutive slices share their boundary close, so the years' returns compound to the window's.
    for a, b in zip(years, years[1:], strict=False):
        assert a.days[-1] == b.days[0]
    chained = math.prod(1 + metrics(y)["total_return"] for y in years) - 1
    assert chained == pytest.approx(metrics(curve)["total_return"], rel=1e-12)
    assert sum(y.fees for y in years) == pytest.approx(curve.fees, rel=1e-12)
    assert sum(y.traded for y in years) == pytest.approx(curve.traded, rel=1e-12)
    assert years[1].fees > 0 and years[2].fees > 0  # the 2020 sell and the 2021 buy
    assert [y.n_decisions for y in years] == [1, 1, 1]  # one day with a fill in each year


def test_rows_have_a_window_row_and_one_per_year_only_when_the_window_spans_years():
    curve = _curve()
    rows = evaluation_rows([curve], "acct", "rules")
    assert [r["period"] for r in rows] == ["window", "2019", "2020", "2021"]
    assert rows[0]["start_date"] == curve.days[0] and rows[0]["end_date"] == curve.days[-1]
    assert rows[2]["start_date"] == date(2019, 12, 31) and rows[2]["end_date"] == date(2020, 12, 31)
    short = Curve("cash", curve.days[20:40], curve.equity[20:40], [0.0] * 20, [0.0] * 20, [False] * 20, 0)
    assert [r["period"] for r in evaluation_rows([short], "acct", "rules")] == ["window"]

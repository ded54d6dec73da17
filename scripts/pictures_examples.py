"""Draw the decision pictures (fks_pipelines/lib/recommend/pictures.py) from example inputs into docs/img/, and
print one JSON line per picture with its time to draw (wall and CPU seconds, median of three) and its size.

    python scripts/pictures_examples.py [OUT_DIR]     # default: docs/img; the explain text goes to stderr

The inputs are made up for the documentation (a small account over 90 days, the six-regime model, a buy cut by
its tier, its stop risk and a prop-firm rule, a month with a profit and a loss); nothing is read from a database.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from fks_pipelines.lib.recommend.pictures import (
    AccountDays,
    GuardLimit,
    ProfitSplit,
    RegimeView,
    account_picture,
    explain_text,
    profit_split_picture,
    regime_picture,
    size_path,
    size_waterfall_picture,
)


def example_account() -> tuple[AccountDays, list[GuardLimit]]:
    """A 1,000 account over 90 days: BTC bought on day 10, ETH held from day 30 to 70 and again from day 78."""
    rng = np.random.default_rng(7)
    days = [date(2026, 9, 5) + timedelta(days=i) for i in range(90)]
    btc_price = 60_000 * np.exp(np.cumsum(rng.normal(0.0005, 0.025, 90)))
    eth_price = 2_400 * np.exp(np.cumsum(rng.normal(-0.001, 0.035, 90)))
    cash, btc_units, eth_units = 1_000.0, 0.0, 0.0
    equity, cash_path, btc, eth = [], [], [], []
    for i in range(90):
        if i == 10:
            btc_units, cash = 300 / btc_price[i], cash - 300
        if i in (30, 78):
            eth_units, cash = 150 / eth_price[i], cash - 150
        if i == 70:
            cash, eth_units = cash + eth_units * eth_price[i], 0.0
        btc.append(btc_units * btc_price[i])
        eth.append(eth_units * eth_price[i])
        cash_path.append(cash)
        equity.append(cash + btc[-1] + eth[-1])
    drawdown = 1 - equity[-1] / max(equity)
    limits = [
        GuardLimit("max_drawdown", 0.20, round(drawdown, 4)),
        GuardLimit("daily_loss_limit", 0.05, 0.012),
        GuardLimit("stoploss_guard", 2, 1, unit="count", symbol="ETHUSDT"),
        GuardLimit(
            "cooldown",
            2,
            None,
            acted=True,
            unit="days",
            symbol="ETHUSDT",
            action="block_entry",
            reason="left ETHUSDT 1 day ago: no re-entry for 2 days",
            until=datetime(2026, 12, 4, 23),
        ),
        GuardLimit("prop_max_drawdown", 0.16, round(max(1 - equity[-1] / 1_000, 0.0), 4)),
    ]
    return AccountDays(days, equity, cash_path, {"BTCUSDT": btc, "ETHUSDT": eth}), limits


def example_regime() -> RegimeView:
    from fks_pipelines.lib.db.analytics import RegimeTransition

    stay = {"up": 0.72, "down": 0.7, "sideways": 0.6}
    regimes = [f"{t}_{v}" for t in ("up", "down", "sideways") for v in ("high_vol", "low_vol")]
    rows = []
    for i, r in enumerate(regimes):
        rest = (1 - stay[r.split("_")[0]]) / 5
        row = {
            o: (stay[r.split("_")[0]] if o == r else rest * (1.6 if o.split("_")[0] == "sideways" else 0.85))
            for o in regimes
        }
        total = sum(row.values())
        rows.append(
            RegimeTransition(
                "BTCUSDT", r, {k: v / total for k, v in row.items()}, [0.2, 0.18, 0.12, 0.14, 0.16, 0.2][i]
            )
        )
    today = {
        "up_low_vol": 0.64,
        "sideways_low_vol": 0.17,
        "up_high_vol": 0.09,
        "sideways_high_vol": 0.05,
        "down_low_vol": 0.03,
        "down_high_vol": 0.02,
    }
    return RegimeView("BTCUSDT", "up_low_vol", today, rows, as_of=date(2026, 12, 3))


def example_size():
    clamps = [
        {
            "field": "stop_loss",
            "from": None,
            "to": 61000.0,
            "rule": "a buy needs a stop below the entry: 2 daily sigmas",
        },
        {
            "field": "target_allocation",
            "from": 0.093,
            "to": 0.0641,
            "rule": "risk per trade 0.38% of equity to the stop",
        },
    ]
    guard_steps = [("prop_max_drawdown: cap_size (room 2.1% of equity at the stop)", 0.041)]
    return size_path("BTCUSDT", tier="small", tier_cap=0.15, confidence=0.62, clamps=clamps, guard_steps=guard_steps)


def example_splits() -> list[ProfitSplit]:
    month = date(2026, 11, 1)
    return [
        ProfitSplit(month, "demo-personal", "demo-long-term", 10_000, 10_840, 840, 420),
        ProfitSplit(month, "demo-prop", "demo-long-term", 25_000, 25_610, 610, 305),
        ProfitSplit(month, "demo-small", "demo-long-term", 1_000, 962.5, -37.5, 0),
    ]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    days, limits = example_account()
    regime, path, splits = example_regime(), example_size(), example_splits()
    jobs = {
        "picture_account.png": lambda: account_picture("demo-personal", days, limits),
        "picture_regime.png": lambda: regime_picture(regime),
        "picture_size.png": lambda: size_waterfall_picture(path),
        "picture_profit_split.png": lambda: profit_split_picture(splits),
    }
    jobs["picture_account.png"]()  # the first draw pays matplotlib's import; the daily run pays it once too
    for name, draw in jobs.items():
        walls, cpus = [], []
        for _ in range(3):  # the median of three draws; CPU time too, as a shared machine stretches the wall time
            wall, cpu = time.perf_counter(), time.process_time()
            png = draw()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        (out / name).write_bytes(png)
        line = {"picture": name, "wall_s": round(sorted(walls)[1], 3), "cpu_s": round(sorted(cpus)[1], 3)}
        print(json.dumps(line | {"bytes": len(png)}))
    print(
        explain_text(
            "demo-personal", date(2026, 12, 3), days=days, limits=limits, regimes=[regime], sizes=[path], splits=splits
        ),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs" / "img")

"""Draw the decision pictures (fks_pipelines/lib/recommend/pictures.py) from example inputs into docs/img/, and
print one JSON line per picture with its time to draw (wall and CPU seconds, median of three) and its size.

    python scripts/pictures_examples.py [OUT_DIR]     # default: docs/img; the explain text goes to stderr

The inputs are made up for the documentation (a small account over 90 days, the six-regime model, a buy cut by
its tier, its stop risk and a prop-firm rule, a month with a profit and a loss); nothing is read from a database.

The guard pictures (docs/img/guard_*.png, docs/guards.md) are made-up histories built so that each guard acts; what
they shade is what the real ``lib/portfolio/guards.evaluate`` (and ``guard_targets`` for the sizes) returned at
each decision, from the history known then (equity up to the decision, exits stamped before it).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from fks_pipelines.lib.portfolio.guards import (
    Act,
    Fill,
    History,
    PropFirmRules,
    Protections,
    Target,
    evaluate,
    guard_targets,
    loss_at_stop,
    prop_room,
)
from fks_pipelines.lib.recommend.pictures import (
    ACTED,
    AccountDays,
    GuardLimit,
    ProfitSplit,
    RegimeView,
    Series,
    account_picture,
    explain_text,
    guard_timeline_picture,
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


# ------------------------------------------------------------------------------------------ guards at work

START = datetime(2026, 9, 1, tzinfo=UTC)
# Every guard off; each example turns on the one it shows, so that what is shaded is that guard's doing.
OFF = Protections(max_drawdown=None, stoploss_count=None, cooldown_days=None, daily_loss_limit=None)
FEE, SLIPPAGE = 0.001, 0.0005


@dataclass
class GuardExample:
    """A made-up account history and what the guards did at each of its decisions (one a day at 00:00 UTC)."""

    title: str
    times: list[datetime]
    equity: list[float]
    exits: list[Fill]
    acts: dict[datetime, list[Act]]  # what evaluate (and guard_targets) returned at each decision
    series: list[Series] = field(default_factory=list)
    lower_label: str = ""
    lower_limit: tuple[str, float] | None = None

    def picture(self) -> bytes:
        return guard_timeline_picture(
            self.title,
            self.times,
            self.equity,
            self.acts,
            series=self.series,
            lower_label=self.lower_label,
            lower_limit=self.lower_limit,
            exits=self.exits,
        )


def _days(n: int) -> list[datetime]:
    return [START + timedelta(days=i) for i in range(n)]


def history_at(times, equity, exits, initial: float, i: int) -> History:
    """What the account knew at decision ``i``: its equity up to and with this decision's, exits stamped before."""
    t = times[i]
    return History(list(zip(times[: i + 1], equity[: i + 1], strict=True)), [f for f in exits if f.at < t], initial)


def evaluate_each_day(p: Protections, rules, times, equity, exits, initial: float) -> dict[datetime, list[Act]]:
    """The real guards, called at every decision on the point-in-time history."""
    out = {}
    for i, t in enumerate(times):
        acts = evaluate(p, rules, history_at(times, equity, exits, initial, i), t).acts
        if acts:
            out[t] = acts
    return out


def _wobble(n: int, size: float = 0.004) -> np.ndarray:
    return 1 + size * np.sin(np.arange(n) * 1.7)


def max_drawdown_example() -> GuardExample:
    """A 10,000 account climbs to 11,000, falls 28 % in eleven days, and recovers: the halt starts at the first
    decision 25 % or more below the 30-day peak and lasts 7 days."""
    n = 60
    path = np.concatenate(
        [np.linspace(10_000, 11_000, 21), np.linspace(10_700, 7_900, 11), np.linspace(8_050, 9_000, 9)]
    )
    path = np.concatenate([path, np.linspace(9_050, 9_800, n - len(path))]) * _wobble(n)
    times, equity = _days(n), [round(float(v), 2) for v in path]
    p = replace(OFF, max_drawdown=0.25, max_drawdown_halt_days=7, max_drawdown_lookback_days=30)
    peak = [
        max(e for t, e in zip(times, equity, strict=True) if t >= times[i] - timedelta(days=30) and t <= times[i])
        for i in range(n)
    ]
    return GuardExample(
        "max-drawdown halt: 25 % below the 30-day peak -> no new entries for 7 days",
        times,
        equity,
        [],
        evaluate_each_day(p, None, times, equity, [], 10_000),
        [
            Series("30-day peak", peak, panel="equity", colour="grey", dashed=True),
            Series(
                "drawdown from the 30-day peak",
                [100 * (e / k - 1) for e, k in zip(equity, peak, strict=True)],
                colour=ACTED,
            ),
        ],
        "drawdown %",
        ("max_drawdown -25 %", -25.0),
    )


def stoploss_guard_example() -> GuardExample:
    """Two ETHUSDT stop-outs four days apart pause ETHUSDT for 3 days from the second; a later lone stop (of
    BTCUSDT, then of ETHUSDT twelve days after the last) pauses nothing."""
    n = 36
    times = _days(n)
    exits = [
        Fill("ETHUSDT", START + timedelta(days=8, hours=14), "stop_loss"),
        Fill("ETHUSDT", START + timedelta(days=12, hours=9), "stop_loss"),
        Fill("BTCUSDT", START + timedelta(days=20, hours=11), "stop_loss"),
        Fill("ETHUSDT", START + timedelta(days=24, hours=10), "stop_loss"),
        Fill("ETHUSDT", START + timedelta(days=30, hours=16), "take_profit"),
    ]
    level = 5_000.0
    equity = []
    for i, t in enumerate(times):
        level *= (
            1.003
            + sum(-0.02 for f in exits if f.reason == "stop_loss" and times[i - 1] <= f.at < t)
            + sum(0.03 for f in exits if f.reason == "take_profit" and times[i - 1] <= f.at < t)
        )
        equity.append(round(level * _wobble(n)[i], 2))
    p = replace(OFF, stoploss_count=2, stoploss_window_days=7, stoploss_pause_days=3)

    def recent(symbol: str) -> list[float | None]:
        return [
            float(
                sum(
                    1
                    for f in exits
                    if f.symbol == symbol and f.reason == "stop_loss" and t - timedelta(days=7) <= f.at < t
                )
            )
            for t in times
        ]

    return GuardExample(
        "stop-loss guard: 2 stop-outs of a symbol within 7 days -> no new entries in it for 3 days",
        times,
        equity,
        exits,
        evaluate_each_day(p, None, times, equity, exits, 5_000),
        [
            Series("ETHUSDT stop-outs, last 7 days", recent("ETHUSDT"), style="step", colour="#8e44ad"),
            Series("BTCUSDT stop-outs, last 7 days", recent("BTCUSDT"), style="step", colour="#e67e22", dashed=True),
        ],
        "stop-outs",
        ("stoploss_count 2", 2.0),
    )


def _sized_by_the_guards(p: Protections, times, equity, exits, initial: float, wanted: dict[str, list[float]]):
    """Each decision's wanted allocations (symbol -> share of equity, 0 for none) as the real guards leave them:
    ``evaluate`` on the history known then, then ``guard_targets`` from the allocation held (yesterday's, or 0
    once an exit closed it). Returns what ``evaluate`` returned at each decision and the allowed allocations."""
    held = dict.fromkeys(wanted, 0.0)
    allowed: dict[str, list[float | None]] = {s: [] for s in wanted}
    acts: dict[datetime, list[Act]] = {}
    for i, t in enumerate(times):
        h = history_at(times, equity, exits, initial, i)
        verdict = evaluate(p, None, h, t)
        for f in h.exits:
            if i and times[i - 1] <= f.at:  # an exit since the last decision closed the position
                held[f.symbol] = 0.0
        targets = [
            Target(s, "buy" if w[i] > held[s] else "sell" if w[i] < held[s] else "hold", w[i], held[s], 100.0, None)
            for s, w in wanted.items()
        ]
        out, _ = guard_targets(targets, verdict)
        for tgt in out:
            held[tgt.symbol] = tgt.target
            allowed[tgt.symbol].append(tgt.target)
        if verdict.acts:
            acts[t] = verdict.acts
    return acts, allowed


def _pct(shares) -> list[float | None]:
    return [None if v is None else 100 * v for v in shares]


def cooldown_example() -> GuardExample:
    """BTCUSDT is sold on day 8 and wanted back from the next decision; ETHUSDT leaves at its take-profit on day
    18 and is wanted back the next day: with a 2-day cooldown both re-entries wait until 2 days after the exit."""
    n = 28
    times = _days(n)
    exits = [
        Fill("BTCUSDT", START + timedelta(days=8, hours=15), "sell"),
        Fill("ETHUSDT", START + timedelta(days=18, hours=10), "take_profit"),
    ]
    equity = [round(float(v), 2) for v in np.linspace(2_000, 2_260, n) * _wobble(n, 0.006)]
    wanted = {
        "BTCUSDT": [0.0 if i == 8 else 0.30 for i in range(n)],  # day 8 decides to leave (filled 15:00)
        "ETHUSDT": [0.20 if i >= 4 else 0.0 for i in range(n)],
    }
    p = replace(OFF, cooldown_days=2)
    acts, allowed = _sized_by_the_guards(p, times, equity, exits, 2_000, wanted)
    return GuardExample(
        "cooldown: no re-entry into a symbol for 2 days after the account left it",
        times,
        equity,
        exits,
        acts,
        [
            Series("BTCUSDT wanted", _pct(wanted["BTCUSDT"]), style="step", colour="#1f3a93", dashed=True),
            Series("BTCUSDT after the guards", _pct(allowed["BTCUSDT"]), style="step", colour="#1f3a93"),
            Series("ETHUSDT wanted", _pct(wanted["ETHUSDT"]), style="step", colour="#27ae60", dashed=True),
            Series("ETHUSDT after the guards", _pct(allowed["ETHUSDT"]), style="step", colour="#27ae60"),
        ],
        "allocation %",
    )


def daily_loss_limit_example() -> GuardExample:
    """A 25,000 account has one day that loses 7 % (and one that loses 4 %, under the limit): the decision that
    sees the 7 % day allows no new entries for the day after it."""
    n = 30
    change = 0.004 * np.sin(np.arange(n) * 1.3) + 0.002
    change[9], change[17] = -0.04, -0.07  # the day before decision i is change[i]
    equity = [round(float(v), 2) for v in 25_000 * np.cumprod(1 + change)]
    equity[0] = 25_000.0
    times = _days(n)
    p = replace(OFF, daily_loss_limit=0.05)
    day = [None] + [100 * (equity[i] / equity[i - 1] - 1) for i in range(1, n)]
    return GuardExample(
        "daily loss limit: a day that lost 5 % or more of its starting equity -> no new entries the next day",
        times,
        equity,
        [],
        evaluate_each_day(p, None, times, equity, [], 25_000),
        [Series("the day's change (from the decision before)", day, style="bars", colour="#7f8c8d")],
        "day %",
        ("daily_loss_limit -5 %", -5.0),
    )


PROP_RULES = PropFirmRules(daily_loss_limit=0.05, max_drawdown=0.10, drawdown="trailing", profit_target=0.10)


def prop_firm_example() -> GuardExample:
    """A 10,000 challenge (5 % daily loss, 10 % trailing drawdown, 10 % profit target) holds 30 % of its equity in
    ETHUSDT with a 7 % stop and, every day, proposes a fresh buy of 60 % in BTCUSDT with a 7 % stop. The real
    guards cap the buy to what the room under the tighter rule leaves once ETHUSDT's risk is counted, refuse it
    (no_size_fits) when the drawdown has left less room than ETHUSDT already risks, and stop entries once the
    profit target is reached."""
    n = 44
    path = np.concatenate(
        [np.linspace(10_000, 10_300, 9), np.linspace(10_150, 9_420, 8), np.linspace(9_500, 11_150, 20)]
    )
    path = np.concatenate([path, np.linspace(11_180, 11_250, n - len(path))]) * _wobble(n, 0.002)
    times, equity = _days(n), [round(float(v), 2) for v in path]
    eth, btc, stop = 0.30, 0.60, 93.0  # the entry is 100: a 7 % stop
    per_unit = loss_at_stop(1.0, 100.0, stop, fee=FEE, slippage=SLIPPAGE)
    acts: dict[datetime, list[Act]] = {}
    allowed, room = [], []
    for i, t in enumerate(times):
        h = history_at(times, equity, [], 10_000, i)
        verdict = evaluate(OFF, PROP_RULES, h, t)
        targets = [Target("BTCUSDT", "buy", btc, 0.0, 100.0, stop), Target("ETHUSDT", "hold", eth, eth, 100.0, stop)]
        out, changed = guard_targets(
            targets, verdict, rules=PROP_RULES, history=h, equity=equity[i], fee=FEE, slippage=SLIPPAGE
        )
        allowed.append(100 * next(x.target for x in out if x.symbol == "BTCUSDT"))
        share = prop_room(PROP_RULES, h, equity[i])[0] / equity[i]
        room.append(100 * max(share - eth * per_unit, 0.0) / per_unit)
        if changed:
            acts[t] = changed
    floor = [round(0.9 * max([10_000, *equity[: i + 1]]), 2) for i in range(n)]
    return GuardExample(
        "prop-firm rules (5 % daily loss, 10 % trailing drawdown, 10 % target): a 60 % BTCUSDT buy with a 7 % stop",
        times,
        equity,
        [],
        acts,
        [
            Series("trailing floor (90 % of the peak)", floor, panel="equity", colour=ACTED, dashed=True),
            Series("profit target", [11_000.0] * n, panel="equity", colour="#27ae60", dashed=True),
            Series("wanted", [100 * btc] * n, style="step", colour="#7f8c8d", dashed=True),
            Series("what the room leaves beside ETHUSDT", room, colour="#e67e22"),
            Series("after the guards", allowed, style="step", colour="#1f3a93"),
        ],
        "BTCUSDT allocation %",
    )


def guard_examples() -> dict[str, GuardExample]:
    """Each guard's example, by the picture's file name."""
    return {
        "guard_max_drawdown.png": max_drawdown_example(),
        "guard_stoploss_guard.png": stoploss_guard_example(),
        "guard_cooldown.png": cooldown_example(),
        "guard_daily_loss_limit.png": daily_loss_limit_example(),
        "guard_prop_firm.png": prop_firm_example(),
    }


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
    jobs |= {name: example.picture for name, example in guard_examples().items()}
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

"""Whether following the recommendations helps: the paper account's equity beside three baselines over the same
window, from the same starting equity, with the same fees and slippage (lib/portfolio/paper.py).

The window runs from the first decision day D0 to the last E: each curve starts at D0's close (the equity the
account had when it first decided) and is marked at every close up to E's. A decision of day d trades at
d+1's open, so E's own decision is outside the window.

- ``recommendations``: the paper account's own ledger (its fills are the recommendations followed);
- ``cash``: the starting equity held as cash;
- ``buy_and_hold``: the universe in equal weight, bought at the first fill moment (D0+1's open), then held;
- ``unprotected``: the same recommendations as the generator sized them, before any protection acted
  (lib/portfolio/guards.py), filled at the next open by the same rules, with no stop or take-profit executed:
  what the account would have done without its safeguards;
- ``strategy_only``: each symbol's chosen strategy at full allocation of its equal-weight sleeve: long while
  analytics.strategy_state says long at a close, flat otherwise, traded at the next open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from fks_pipelines.lib.portfolio.ledger import Trade
from fks_pipelines.lib.portfolio.paper import FEE, SLIPPAGE, Target, fill_time
from fks_pipelines.lib.portfolio.replay import FillBars, Ledger, replay_day
from fks_pipelines.lib.quant.selection import curve_metrics

BASELINES = ("recommendations", "unprotected", "cash", "buy_and_hold", "strategy_only")
DAYS_PER_YEAR = 365

Prices = Mapping[str, Mapping[date, tuple[float, float]]]  # symbol -> day -> (open, close)


@dataclass
class Curve:
    """One baseline's daily record over D0 .. E. Every list has one entry per day, so that a calendar year's
    slice (:func:`by_year`) is exactly the same curve restricted to its days."""

    baseline: str
    days: list[date]  # D0 .. E
    equity: list[float]  # at each day's close
    daily_fees: list[float]  # fees and slippage paid by the fills at the day's open, quote currency
    daily_traded: list[float]  # notional filled at the day's open, quote currency
    in_market: list[bool]  # held a position during the day (after the fills at its open)
    n_decisions: int

    @property
    def fees(self) -> float:
        return float(sum(self.daily_fees))

    @property
    def traded(self) -> float:
        return float(sum(self.daily_traded))


def _value(cash: float, positions: Mapping[str, float], prices: Prices, day: date) -> float:
    return cash + sum(q * prices[s][day][1] for s, q in positions.items() if q and day in prices.get(s, {}))


def _apply(fills: Sequence[Trade], cash: float, positions: dict[str, float]) -> tuple[float, float, float]:
    """Apply ``fills`` in place; returns (cash, fees, traded notional)."""
    fees = traded = 0.0
    for t in fills:
        sign = 1.0 if t.side == "buy" else -1.0
        notional = float(t.quantity) * float(t.price)
        positions[t.symbol] = positions.get(t.symbol, 0.0) + sign * float(t.quantity)
        cash -= sign * notional + float(t.fee)
        fees, traded = fees + float(t.fee), traded + notional
    return cash, fees, traded


def ledger_curve(
    days: list[date], prices: Prices, cash: float, positions: Mapping[str, float], trades: Sequence[Trade], n: int
) -> Curve:
    """The paper account's equity at each close, replaying its trades after D0's close."""
    held = dict(positions)
    equity, in_market, fees, traded = [_value(cash, held, prices, days[0])], [False], [0.0], [0.0]
    pending = sorted(
        (t for t in trades if t.executed_at > fill_time(days[0]) - timedelta(seconds=1)), key=lambda t: t.executed_at
    )
    for day in days[1:]:
        close_time = fill_time(day) - timedelta(seconds=1)
        todays = [t for t in pending if t.executed_at <= close_time]
        pending = [t for t in pending if t.executed_at > close_time]
        cash, f, x = _apply(todays, cash, held)
        fees.append(f)
        traded.append(x)
        in_market.append(any(q > 0 for q in held.values()))
        equity.append(_value(cash, held, prices, day))
    return Curve("recommendations", days, equity, fees, traded, in_market, n)


def simulated_curve(
    baseline: str,
    days: list[date],
    prices: Prices,
    start_equity: float,
    targets: Mapping[date, list[Target]],
    *,
    fee: float = FEE,
    slippage: float = SLIPPAGE,
    start_positions: Mapping[str, float] | None = None,
) -> Curve:
    """Start all in cash at D0's close (or, with ``start_positions``, holding them and the rest of
    ``start_equity`` in cash); each day d's ``targets`` fill at d+1's open (the paper rules, by the one replay the
    paper accounts use)."""
    held: dict[str, float] = dict(start_positions or {})
    cash = start_equity - sum(q * prices[s][days[0]][1] for s, q in held.items() if days[0] in prices.get(s, {}))
    fees, traded = [0.0], [0.0]
    equity, in_market, decisions = [start_equity], [False], 0
    for previous, day in zip(days, days[1:], strict=False):
        opens = {s: p[day][0] for s, p in prices.items() if day in p}
        ledger = Ledger(baseline, cash, held, targets.get(previous, []))
        (filled,) = replay_day(previous, [ledger], FillBars(opens), fee=fee, slippage=slippage)
        fills = filled.fills
        decisions += bool(fills)
        cash, f, x = _apply(fills, cash, held)
        fees.append(f)
        traded.append(x)
        in_market.append(any(q > 0 for q in held.values()))
        equity.append(_value(cash, held, prices, day))
    return Curve(baseline, days, equity, fees, traded, in_market, decisions)


def baseline_targets(
    days: list[date], symbols: Sequence[str], positions: Mapping[tuple[date, str], str]
) -> dict[str, dict[date, list[Target]]]:
    """The decisions of buy_and_hold (equal weight on D0, then nothing) and strategy_only (a symbol's sleeve is
    bought when its strategy turns long at a close and sold when it stops being long), keyed by decision day."""
    weight = 1.0 / len(symbols) if symbols else 0.0
    buy_and_hold = {days[0]: [Target(s, "buy", weight) for s in symbols]}
    strategy_only: dict[date, list[Target]] = {}
    for i, day in enumerate(days):
        moves = []
        for s in symbols:
            long_now = positions.get((day, s)) == "long"
            long_before = i > 0 and positions.get((days[i - 1], s)) == "long"
            if long_now and not long_before:
                moves.append(Target(s, "buy", weight))
            elif long_before and not long_now:
                moves.append(Target(s, "sell", 0.0))
        if moves:
            strategy_only[day] = moves
    return {"buy_and_hold": buy_and_hold, "strategy_only": strategy_only}


def evaluate(
    days: list[date],
    symbols: Sequence[str],
    prices: Prices,
    *,
    cash: float,
    positions: Mapping[str, float],
    trades: Sequence[Trade],
    strategy_positions: Mapping[tuple[date, str], str],
    n_decisions: int,
    unprotected: Mapping[date, list[Target]] | None = None,
) -> list[Curve]:
    """The curves of one paper account over ``days`` (D0 .. E): its ledger, the ledger without its protections
    (when ``unprotected`` targets are given) and the three baselines, all from the account's equity at D0's
    close."""
    ledger = ledger_curve(days, prices, cash, positions, trades, n_decisions)
    start = ledger.equity[0]
    targets = baseline_targets(days, symbols, strategy_positions)
    zeros = [0.0] * len(days)
    cash_curve = Curve("cash", days, [start] * len(days), zeros, zeros, [False] * len(days), 0)
    without = (
        []
        if unprotected is None
        else [simulated_curve("unprotected", days, prices, start, unprotected, start_positions=positions)]
    )
    return [
        ledger,
        *without,
        cash_curve,
        simulated_curve("buy_and_hold", days, prices, start, targets["buy_and_hold"]),
        simulated_curve("strategy_only", days, prices, start, targets["strategy_only"]),
    ]


def metrics(curve: Curve) -> dict[str, float | int | None]:
    """The evaluation table's numbers for one curve (daily closes; Sharpe and Sortino annualised by sqrt(365)). A
    curve that is ever at zero equity or below (an account with no cash) is flat: return and drawdown 0, ratios
    None; never NaN."""
    values = np.asarray(curve.equity, dtype=float)
    if not len(values) or values.min() <= 0:  # no equity to measure against (a paper account with zero cash): flat
        return {
            "total_return": 0.0,
            "cagr": None,
            "sharpe": None,
            "sortino": None,
            "max_drawdown": 0.0,
            "turnover": 0.0,
            "fees": curve.fees,
            "hit_rate": None,
            "n_decisions": curve.n_decisions,
        }
    m = curve_metrics(values, DAYS_PER_YEAR)
    returns = np.diff(values) / values[:-1] if len(values) > 1 else np.array([])
    years = len(returns) / DAYS_PER_YEAR
    total = float(values[-1] / values[0] - 1) if len(values) and values[0] > 0 else 0.0
    invested = [r for r, held in zip(returns, curve.in_market[1:], strict=True) if held]
    clean = lambda v: None if v is None or not math.isfinite(v) else float(v)  # noqa: E731
    return {
        "total_return": total,
        "cagr": clean((1 + total) ** (1 / years) - 1) if years > 0 and total > -1 else None,
        "sharpe": clean(m["sharpe"]),
        "sortino": clean(m["sortino"]),
        "max_drawdown": float(m["max_drawdown"]),
        "turnover": curve.traded / float(values.mean()) if len(values) and values.mean() > 0 else 0.0,
        "fees": curve.fees,
        "hit_rate": float(np.mean([r > 0 for r in invested])) if invested else None,
        "n_decisions": curve.n_decisions,
    }


def by_year(curve: Curve) -> list[Curve]:
    """The curve cut into calendar years (UTC): each year's slice starts at the previous year's last close (or at
    D0 for the first year) and ends at the year's last close within the window, so its returns are exactly the
    whole curve's returns of that year. A slice's ``n_decisions`` counts its days with a fill (per-day decision
    counts are not kept for the followed ledger)."""
    out = []
    years = sorted({d.year for d in curve.days[1:]})
    for year in years:
        idx = [i for i, d in enumerate(curve.days) if d.year == year and i > 0]
        start = idx[0] - 1  # the close before the year's first counted day
        sl = slice(start, idx[-1] + 1)
        fees, traded = list(curve.daily_fees[sl]), list(curve.daily_traded[sl])
        fees[0] = traded[0] = 0.0  # the start close's own fills belong to the previous slice
        out.append(
            Curve(
                curve.baseline,
                curve.days[sl],
                curve.equity[sl],
                fees,
                traded,
                [False, *curve.in_market[start + 1 : idx[-1] + 1]],
                sum(1 for x in traded[1:] if x > 0),
            )
        )
    return out


def evaluation_rows(curves: Sequence[Curve], account: str, generator: str) -> list[dict]:
    """recommendations.evaluation's rows for one account and generator: each curve over its whole window
    (period 'window') and, when the window spans more than one calendar year, per year (period 'YYYY')."""
    rows = []
    for curve in curves:
        parts = [("window", curve)]
        if curve.days[0].year != curve.days[-1].year:
            parts += [(str(part.days[-1].year), part) for part in by_year(curve)]
        for period, part in parts:
            rows.append(
                {"account": account, "generator": generator, "baseline": curve.baseline, "period": period}
                | {"start_date": part.days[0], "end_date": part.days[-1]}
                | metrics(part)
            )
    return rows

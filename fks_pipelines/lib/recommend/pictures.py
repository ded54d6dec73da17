"""A picture for every decision, and the terminal text that goes with them (``fks explain``).

Four small PNGs (matplotlib, Agg backend, 90 dpi), each drawn from plain Python inputs so that the asset page,
the Discord post and ``fks explain`` show the same thing:

- ``account_picture``: where the account stands: equity above its drawdown from the running peak (underwater),
  the drawdown limits drawn on it, cash against each position over time, and each guard's distance to its limit;
- ``regime_picture``: the regime model as a state diagram: today's regime highlighted, arrows to tomorrow's
  regimes labelled with their probabilities (and the whole transition matrix, faint, when given);
- ``size_waterfall_picture``: why this size: the tier's cap, the confidence, each sizing clamp and each guard act,
  down (or up) to the final target allocation;
- ``profit_split_picture``: where last month's profit went: from each trading account, half to the long-term
  account and half kept (``portfolio.profit_splits``); a loss moves nothing.
- ``guard_timeline_picture``: a guard at work over a history of decisions: the equity, what the guard watches
  against its limit, and every run of decisions at which it acted, shaded and numbered with its reason
  (docs/guards.md draws one per guard from the real ``guards.evaluate``).

Amounts are in the account currency, allocations and limits are shares of equity (0.25 = 25 %), days are UTC.
The inputs mirror what is stored: ``GuardLimit`` has the fields of a guard's act
(``lib/portfolio/guards.Act``: guard, action, symbol, reason, threshold, value, until), ``RegimeView`` takes
``analytics.market_regimes`` / ``regime_transitions`` rows, ``ProfitSplit`` the columns of
``portfolio.profit_splits``, and ``size_path`` the clamp records of ``lib/portfolio/sizing.size``.
Nothing here reads a database or the clock.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 90
DRAWDOWN_GUARDS = ("max_drawdown", "prop_max_drawdown")  # drawn as lines on the underwater panel
GUARD_UNITS = {"stoploss_guard": "count", "cooldown": "days"}  # every other guard's limit is a share of equity
ACTED, ROOM, TIGHT = "#c0392b", "#2e86c1", "#e67e22"


# ---------------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class AccountDays:
    """The account's marks at each day's close (UTC days, ascending), in the account currency.
    ``positions`` maps each symbol to its market value per day (0 when not held); equity = cash + positions."""

    days: Sequence[date]
    equity: Sequence[float]
    cash: Sequence[float]
    positions: Mapping[str, Sequence[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.days)
        lengths = {"equity": len(self.equity), "cash": len(self.cash)}
        lengths |= {f"positions[{s}]": len(v) for s, v in self.positions.items()}
        wrong = {k: v for k, v in lengths.items() if v != n}
        if wrong:
            raise ValueError(f"AccountDays: {n} days but {wrong} values")

    def x(self) -> np.ndarray:
        """The days as numpy days (a timestamp counts for its UTC day), which matplotlib draws as dates."""
        return np.array(
            [(d.astimezone(UTC) if d.tzinfo else d).date() if isinstance(d, datetime) else d for d in self.days],
            dtype="datetime64[D]",
        )


@dataclass(frozen=True)
class GuardLimit:
    """One guard against its limit on the decision day. ``threshold`` and ``value`` are in the guard's ``unit``
    (a share of equity for drawdowns and loss limits, a number of stop-outs, or days); ``acted`` says the guard
    acted on this decision (its ``action`` and ``reason`` as in its act). The fields are those of
    ``guards.Act`` plus ``acted`` and ``unit``; ``guard_limits_from_acts`` converts acts."""

    guard: str
    threshold: float | None
    value: float | None
    acted: bool = False
    unit: str = "share"  # share | count | days
    symbol: str | None = None
    action: str | None = None
    reason: str = ""
    until: datetime | None = None

    @property
    def distance(self) -> float | None:
        """How far the value is from the limit (in the guard's unit); negative once past it."""
        if self.threshold is None or self.value is None:
            return None
        return self.threshold - self.value


def guard_limits_from_acts(acts: Iterable[Any]) -> list[GuardLimit]:
    """Every act of a guard (anything with ``guard, action, symbol, reason, threshold, value, until``, as
    ``guards.Act``) as an acted limit."""
    return [
        GuardLimit(
            guard=a.guard,
            threshold=a.threshold,
            value=a.value,
            acted=True,
            unit=GUARD_UNITS.get(a.guard, "share"),
            symbol=a.symbol,
            action=a.action,
            reason=a.reason,
            until=a.until,
        )
        for a in acts
    ]


class TransitionRow(Protocol):
    """A row of ``analytics.regime_transitions`` (``lib/db/analytics.RegimeTransition`` is one)."""

    @property
    def from_regime(self) -> str: ...
    @property
    def to_probabilities(self) -> Mapping[str, float]: ...
    @property
    def stationary_share(self) -> float: ...


@dataclass(frozen=True)
class RegimeView:
    """A symbol's regime on the decision day (``analytics.market_regimes``: regime and next-day probabilities,
    estimated point-in-time) and, optionally, its transition matrix (``analytics.regime_transitions`` rows)."""

    symbol: str
    current: str
    next_day_probabilities: Mapping[str, float]
    transitions: Sequence[TransitionRow] = ()
    as_of: date | None = None

    @classmethod
    def of(cls, day: Any, transitions: Iterable[TransitionRow] = ()) -> RegimeView:
        """From a ``market_regimes`` row (``symbol, bucket, regime, next_day_probabilities``, as
        ``lib/db/analytics.RegimeDay``) and the market's transition rows (those of other symbols are left out)."""
        mine = [t for t in transitions if getattr(t, "symbol", day.symbol) == day.symbol]
        bucket = day.bucket
        as_of = (bucket.astimezone(UTC) if bucket.tzinfo else bucket).date() if isinstance(bucket, datetime) else bucket
        return cls(day.symbol, day.regime, dict(day.next_day_probabilities), mine, as_of)

    def regimes(self) -> list[str]:
        """Every regime named anywhere, in the model's order (``lib/quant/regimes.REGIMES``), others after."""
        names = {self.current, *self.next_day_probabilities}
        for t in self.transitions:
            names |= {t.from_regime, *t.to_probabilities}
        known = [r for r in _CIRCLE_ORDER if r in names]
        return known + sorted(names - set(known))


@dataclass(frozen=True)
class SizeStep:
    """One step of the size path: what acted (a rule or a guard) and the target allocation after it."""

    label: str
    value_after: float
    kind: str = "clamp"  # confidence | proposal | clamp | guard


@dataclass(frozen=True)
class SizePath:
    """From ``start`` (the tier's cap, a share of equity) through ``steps`` to the final target allocation."""

    symbol: str
    start_label: str
    start: float
    steps: Sequence[SizeStep] = ()

    @property
    def final(self) -> float:
        return self.steps[-1].value_after if self.steps else self.start


def size_path(
    symbol: str,
    *,
    tier: str,
    tier_cap: float,
    confidence: float | None = None,
    proposed: float | None = None,
    clamps: Iterable[Mapping[str, Any]] = (),
    guard_steps: Iterable[tuple[str, float]] = (),
) -> SizePath:
    """The path a recommendation's size took: the tier's cap, times the confidence (the rules engine's proposal),
    the proposal when it differs (an LLM's), every ``sizing.size`` clamp record on ``target_allocation``
    (``{field, from, to, rule}``) and every guard act as ``(label, allocation after it)``."""
    steps: list[SizeStep] = []
    if confidence is not None:
        steps.append(SizeStep(f"x confidence {confidence:.0%}", tier_cap * confidence, "confidence"))
    if proposed is not None and not math.isclose(proposed, steps[-1].value_after if steps else tier_cap):
        steps.append(SizeStep("proposed", proposed, "proposal"))
    for c in clamps:
        if c.get("field") == "target_allocation":
            steps.append(SizeStep(str(c.get("rule", "clamp")), float(c["to"]), "clamp"))
    steps += [SizeStep(label, value, "guard") for label, value in guard_steps]
    return SizePath(symbol, f"tier {tier}: cap", tier_cap, steps)


@dataclass(frozen=True)
class ProfitSplit:
    """A row of ``portfolio.profit_splits``: the month's profit (net of deposits) of a trading account and the
    transfer to the long-term account (half a profit, nothing for a loss)."""

    month: date
    account: str
    to_account: str | None
    equity_start: float
    equity_end: float
    profit: float
    transfer: float
    net_deposits: float = 0.0


# -------------------------------------------------------------------------------------------------- pictures


def account_picture(account: str, days: AccountDays, limits: Sequence[GuardLimit] = ()) -> bytes:
    """Equity (top), its drawdown below the running peak with the drawdown limits (middle), cash and each
    position stacked (bottom), and each guard's share of its limit used (right; red: it acted)."""
    fig = _figure(9, 5.2)
    grid = fig.add_gridspec(
        3,
        2,
        width_ratios=[2.3, 1],
        height_ratios=[2, 1.2, 1.4],
        wspace=0.42,
        hspace=0.12,
        left=0.08,
        right=0.98,
        top=0.88,
        bottom=0.12,
    )
    top = fig.add_subplot(grid[0, 0])
    under = fig.add_subplot(grid[1, 0], sharex=top)
    alloc = fig.add_subplot(grid[2, 0], sharex=top)
    bars = fig.add_subplot(grid[:, 1])
    equity = np.asarray(days.equity, dtype=float)
    last = days.days[-1] if len(days.days) else None
    fig.suptitle(f"{account}: where the account stands" + (f" on {last}" if last else ""), fontsize=10)
    if len(equity):
        x = days.x()
        if len(x) == 1:  # a first day: a range of three days to place it in
            top.set_xlim(x[0] - np.timedelta64(1, "D"), x[0] + np.timedelta64(1, "D"))
        peak = np.maximum.accumulate(equity)
        drawdown = _drawdown_pct(equity)
        top.plot(x, equity, color="#1f3a93", lw=1.2, label="equity")
        top.plot(x, peak, color="grey", lw=0.8, ls=":", label="running peak")
        under.fill_between(x, drawdown, 0, color=ACTED, alpha=0.35, lw=0)
        under.plot(x, drawdown, color=ACTED, lw=0.8)
        symbols = sorted(days.positions)
        layers = [np.asarray(days.cash, dtype=float)] + [np.asarray(days.positions[s], dtype=float) for s in symbols]
        alloc.stackplot(x, *layers, labels=["cash", *symbols], alpha=0.8)
        alloc.legend(fontsize=6, loc="upper left", ncol=min(4, len(layers)))
        top.legend(fontsize=7, loc="lower left")
        top.set_title(
            f"equity {equity[-1]:,.2f}, {drawdown[-1]:+.1f}% from its peak {peak[-1]:,.2f}", fontsize=8, loc="left"
        )
    else:
        top.text(0.5, 0.5, "no history yet", ha="center", va="center", transform=top.transAxes, color="grey")
    floor = 0.0
    for g in limits:
        if g.guard in DRAWDOWN_GUARDS and g.threshold is not None:
            level = -100 * g.threshold
            floor = min(floor, level)
            under.axhline(level, color=ACTED if g.acted else TIGHT, lw=1, ls="--")
            under.text(
                0.01,
                level,
                f" {g.guard} {g.threshold:.0%}",
                transform=under.get_yaxis_transform(),
                fontsize=6,
                va="bottom",
                color=ACTED if g.acted else TIGHT,
            )
    under.set_ylim(min(floor, float(np.min(_drawdown_pct(equity))) if len(equity) else 0.0) * 1.15 - 1, 1)
    top.set_ylabel("equity", fontsize=8)
    under.set_ylabel("drawdown %", fontsize=8)
    alloc.set_ylabel("cash / positions", fontsize=8)
    for ax in (top, under, alloc):
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in (top, under):
        ax.tick_params(labelbottom=False)
    if len(equity):
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator(maxticks=7)
        alloc.xaxis.set_major_locator(locator)
        alloc.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    _limit_bars(bars, limits)
    return _png(fig)


def _drawdown_pct(equity: np.ndarray) -> np.ndarray:
    peak = np.maximum.accumulate(equity)
    return np.where(peak > 0, equity / np.where(peak > 0, peak, 1.0) - 1, 0.0) * 100


def _limit_bars(ax: Any, limits: Sequence[GuardLimit]) -> None:
    """Each guard's value as a share of its threshold (100 %: the limit), with the distance left written."""
    ax.set_title("distance to each limit", fontsize=8)
    ax.tick_params(labelsize=7)
    if not limits:
        ax.text(0.5, 0.5, "no guards", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    names, used, colours, notes = [], [], [], []
    for g in limits:
        names.append(g.guard + (f"\n{g.symbol}" if g.symbol else ""))
        share = g.value / g.threshold if g.value is not None and g.threshold else (1.0 if g.acted else 0.0)
        used.append(min(max(share, 0.0), 1.3) * 100)
        colours.append(ACTED if g.acted else TIGHT if share >= 0.75 else ROOM)
        notes.append(("ACTED " if g.acted else "") + _distance_text(g))
    y = np.arange(len(limits))[::-1]
    ax.barh(y, used, color=colours, height=0.6)
    ax.axvline(100, color="black", lw=0.8)
    for yi, note in zip(y, notes, strict=True):
        ax.text(2, yi + 0.38, note, fontsize=6, va="center")
    ax.set_yticks(y, names, fontsize=6)
    ax.set_xlim(0, 135)
    ax.set_ylim(-0.6, len(limits) - 0.2)
    ax.set_xlabel("% of the limit used", fontsize=7)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "share":
        return f"{value:.2%}"
    return f"{value:g} {'stop-outs' if unit == 'count' else 'days'}"


def _distance_text(g: GuardLimit) -> str:
    """E.g. ``14.82% of 20.00%: 5.18 pts left``, ``1 of 2 stop-outs: 1 left``, ``limit 2 days, until ...``."""
    d = g.distance
    until = f", until {g.until:%Y-%m-%d %H:%M}" if g.until else ""
    if d is None:
        return f"limit {_fmt(g.threshold, g.unit)}{until}"
    if g.unit == "share":
        left = f"{100 * d:.2f} pts left" if d >= 0 else f"past it by {-100 * d:.2f} pts"
        return f"{g.value:.2%} of {g.threshold:.2%}: {left}{until}"
    left = f"{d:g} left" if d >= 0 else f"past it by {-d:g}"
    return f"{g.value:g} of {_fmt(g.threshold, g.unit)}: {left}{until}"


# The model's six regimes (lib/quant/regimes.REGIMES) around an ellipse: high volatility on top, low below,
# up on the left, down on the right.
_CIRCLE_ORDER = ("up_high_vol", "sideways_high_vol", "down_high_vol", "down_low_vol", "sideways_low_vol", "up_low_vol")


def regime_picture(view: RegimeView) -> bytes:
    """The state diagram (left): one node per regime with its long-run share, today's highlighted, arrows from it
    to tomorrow's regimes labelled with their probabilities (the other transitions faint when a matrix is
    given); tomorrow's probabilities as bars (right)."""
    from matplotlib.patches import Circle, FancyArrowPatch

    fig = _figure(9, 4.4)
    ax, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    fig.subplots_adjust(left=0.01, right=0.97, top=0.92, bottom=0.08, wspace=0.3)
    regimes = view.regimes()
    n = len(regimes)
    angles = (
        [math.radians(150 - 60 * i) for i in range(n)]
        if n == 6
        else [math.pi / 2 - 2 * math.pi * i / n for i in range(n)]
    )
    pos = {r: ((1.6 * math.cos(a), math.sin(a)) if n > 1 else (0.0, 0.0)) for r, a in zip(regimes, angles, strict=True)}
    radius = 0.3
    matrix = {t.from_regime: t.to_probabilities for t in view.transitions}
    stationary = {t.from_regime: t.stationary_share for t in view.transitions}
    rows = dict(matrix)
    rows[view.current] = view.next_day_probabilities  # today's own (point-in-time) row
    for origin, row in rows.items():
        for target, p in row.items():
            if target == origin or p <= 0 or origin not in pos or target not in pos:
                continue
            mine = origin == view.current
            (x0, y0), (x1, y1) = pos[origin], pos[target]
            dist = math.hypot(x1 - x0, y1 - y0)
            ux, uy = (x1 - x0) / dist, (y1 - y0) / dist
            a, b = (x0 + radius * ux, y0 + radius * uy), (x1 - radius * ux, y1 - radius * uy)
            ax.add_patch(
                FancyArrowPatch(
                    a,
                    b,
                    connectionstyle="arc3,rad=0.18",
                    arrowstyle="-|>",
                    mutation_scale=10 if mine else 6,
                    lw=0.6 + 5 * p if mine else 0.3 + 2 * p,
                    color=ACTED if mine else "grey",
                    alpha=0.9 if mine else min(0.25 + p, 0.6),
                    zorder=3 if mine else 1,
                )
            )
            if mine or p >= 0.1:
                # On the arc (arc3's control point), past its middle for today's arrows so their labels fan out.
                t = 0.62 if mine else 0.5
                dx, dy = b[0] - a[0], b[1] - a[1]
                cx, cy = (a[0] + b[0]) / 2 + 0.18 * dy, (a[1] + b[1]) / 2 - 0.18 * dx
                ax.text(
                    (1 - t) ** 2 * a[0] + 2 * t * (1 - t) * cx + t**2 * b[0],
                    (1 - t) ** 2 * a[1] + 2 * t * (1 - t) * cy + t**2 * b[1],
                    f"{p:.0%}",
                    fontsize=8 if mine else 6,
                    ha="center",
                    va="center",
                    color=ACTED if mine else "dimgrey",
                    zorder=4,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
                )
    for r in regimes:
        x, y = pos[r]
        today = r == view.current
        ax.add_patch(
            Circle(
                (x, y),
                radius,
                fc="#fdebd0" if today else "#eaf2f8",
                ec=ACTED if today else "#5d6d7e",
                lw=2.5 if today else 1,
                zorder=5,
            )
        )
        stay = rows.get(r, {}).get(r)
        text = r.replace("_", " ", 1).replace("_vol", " vol")
        ax.text(
            x,
            y + 0.06,
            text.replace(" ", "\n", 1),
            ha="center",
            va="center",
            fontsize=7,
            weight="bold" if today else "normal",
            zorder=6,
        )
        if stay is not None:
            ax.text(x, y - 0.17, f"stay {stay:.0%}", ha="center", va="center", fontsize=6, zorder=6)
        if r in stationary:
            below = -1 if y <= 0 else 1
            ax.text(
                x,
                y + below * (radius + 0.09),
                f"long run {stationary[r]:.0%}",
                ha="center",
                va="center",
                fontsize=6,
                color="dimgrey",
            )
    ax.set_xlim(-2.1, 2.1)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    when = f" on {view.as_of}" if view.as_of else ""
    ax.set_title(f"{view.symbol}{when}: today {view.current}", fontsize=9)
    order = sorted(view.next_day_probabilities.items(), key=lambda kv: kv[1])
    bars.barh(
        [k for k, _ in order],
        [100 * v for _, v in order],
        color=[ACTED if k == view.current else ROOM for k, _ in order],
        height=0.6,
    )
    bars.set_ylim(-0.7, max(len(order), 3) - 0.3)
    for k, v in order:
        bars.text(100 * v + 1, k, f"{v:.0%}", va="center", fontsize=7)
    bars.set_title("tomorrow (%)", fontsize=8)
    bars.tick_params(labelsize=7)
    bars.set_xlim(0, 112)
    bars.set_xticks([0, 25, 50, 75, 100])
    bars.grid(alpha=0.3, axis="x")
    return _png(fig)


def size_waterfall_picture(path: SizePath) -> bytes:
    """A horizontal waterfall: the start bar (the tier's cap), one floating bar per step from the allocation
    before it to the allocation after it (down red, up green; guards hatched), and the final target."""
    labels = [path.start_label] + [_wrap(s.label) for s in path.steps] + ["final target"]
    height = 1.4 + 0.42 * len(labels)
    fig = _figure(8, height)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.32, right=0.97, top=1 - 0.35 / height, bottom=0.55 / height)
    y = np.arange(len(labels))[::-1]
    ax.barh(y[0], 100 * path.start, color="#7f8c8d", height=0.6)
    before = path.start
    for yi, step in zip(y[1:-1], path.steps, strict=True):
        after = step.value_after
        down = after < before
        ax.barh(
            yi,
            100 * (after - before),
            left=100 * before,
            height=0.6,
            color=ACTED if down else "#27ae60",
            hatch="//" if step.kind == "guard" else None,
            edgecolor="white" if step.kind == "guard" else None,
        )
        ax.plot([100 * before] * 2, [yi + 1 - 0.3, yi + 0.3], color="grey", lw=0.6)
        ax.text(100 * max(before, after) + 0.3, yi, f"{after:.2%}", va="center", fontsize=7)
        before = after
    ax.barh(y[-1], 100 * path.final, color="#1f3a93", height=0.6)
    ax.text(100 * path.start + 0.3, y[0], f"{path.start:.2%}", va="center", fontsize=7)
    ax.text(100 * path.final + 0.3, y[-1], f"{path.final:.2%}", va="center", fontsize=7, weight="bold")
    ax.set_yticks(y, labels, fontsize=7)
    top = max([path.start, path.final, *[s.value_after for s in path.steps]] + [0.01])
    ax.set_xlim(0, 100 * top * 1.18)
    ax.set_xlabel("target allocation (% of equity)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(f"{path.symbol}: why this size ({path.final:.2%} of equity)", fontsize=9)
    return _png(fig)


def _wrap(label: str, width: int = 44) -> str:
    return "\n".join(textwrap.wrap(label, width)[:2]) or label


def profit_split_picture(rows: Sequence[ProfitSplit]) -> bytes:
    """The latest month's split as a flow: each trading account's profit (left) flows half to the long-term
    account and half back to itself (right), band widths in the account currency; a loss is a red block that
    sends nothing."""
    fig = _figure(8, 4)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.02)
    ax.axis("off")
    if not rows:
        ax.text(0.5, 0.5, "no profit split yet", ha="center", va="center", color="grey")
        return _png(fig)
    month = max(r.month for r in rows)
    rows = sorted((r for r in rows if r.month == month), key=lambda r: r.account)
    ax.set_title(f"profit split for {month:%Y-%m}: half of a profit to the long-term account", fontsize=9)
    total = sum(abs(r.profit) for r in rows) or 1.0
    gap = 0.06 * total
    transfers = sum(r.transfer for r in rows)
    receivers = sorted({r.to_account or "(no long-term account)" for r in rows if r.transfer > 0})
    # Left column: each account's profit (or loss); right column: the receivers, then what each account keeps.
    y = 0.0
    left: dict[str, tuple[float, float]] = {}
    for r in rows:
        h = max(abs(r.profit), 0.004 * total)
        left[r.account] = (y, y + h)
        y += h + gap
    height = y - gap
    right: dict[str, tuple[float, float]] = {}
    y = 0.0
    for name in receivers:
        h = sum(r.transfer for r in rows if (r.to_account or "(no long-term account)") == name)
        right[name] = (y, y + h)
        y += h + gap
    for r in rows:
        if r.profit > 0:
            right["kept:" + r.account] = (y, y + r.profit - r.transfer)
            y += r.profit - r.transfer + gap
    height = max(height, y - gap)

    def band(l0: float, l1: float, r0: float, r1: float, colour: str) -> None:
        t = np.linspace(0, 1, 40)
        s = 3 * t**2 - 2 * t**3
        ax.fill_between(0.12 + 0.76 * t, l0 + (r0 - l0) * s, l1 + (r1 - l1) * s, color=colour, alpha=0.45, lw=0)

    used = {k: v[0] for k, v in right.items()}
    for r in rows:
        l0, l1 = left[r.account]
        gain = r.profit > 0
        ax.fill_between([0.08, 0.12], l0, l1, color="#27ae60" if gain else ACTED)
        deposits = f", deposits {r.net_deposits:+,.2f}" if r.net_deposits else ""
        moved = "" if gain else " (nothing moves)"
        ax.text(
            0.07,
            (l0 + l1) / 2,
            f"{r.account}\n{r.equity_start:,.2f} -> {r.equity_end:,.2f}{deposits}\nprofit {r.profit:+,.2f}{moved}",
            ha="right",
            va="center",
            fontsize=7,
        )
        if not gain:
            continue
        name = r.to_account or "(no long-term account)"
        if r.transfer > 0:
            band(l0, l0 + r.transfer, used[name], used[name] + r.transfer, "#8e44ad")
            used[name] += r.transfer
        kept = r.profit - r.transfer
        if kept > 0:
            k0 = right["kept:" + r.account][0]
            band(l0 + r.transfer, l1, k0, k0 + kept, "#27ae60")
    for name, (r0, r1) in right.items():
        kept = name.startswith("kept:")
        ax.fill_between([0.88, 0.92], r0, r1, color="#27ae60" if kept else "#8e44ad")
        text = f"{name[5:]} keeps {r1 - r0:,.2f}" if kept else f"{name} receives {r1 - r0:,.2f}"
        ax.text(0.93, (r0 + r1) / 2, text, ha="left", va="center", fontsize=7)
    ax.text(0.5, -0.06 * height - gap / 2, f"transfers this month: {transfers:,.2f}", ha="center", fontsize=7)
    ax.set_xlim(-0.45, 1.4)
    ax.set_ylim(height + gap, -0.12 * height - gap)  # top to bottom
    return _png(fig)


# ------------------------------------------------------------------------------------------- guards at work

ACTION_COLOURS = {"block_entry": ACTED, "cut_exposure": "#8e44ad", "cap_size": TIGHT, "no_size_fits": "#7b241c"}
EXIT_MARKERS = {"stop_loss": ("v", ACTED), "take_profit": ("^", "#27ae60")}  # anything else: a sell, grey dot


@dataclass(frozen=True)
class Series:
    """A line drawn beside the equity (``panel="equity"``) or on the lower panel, one value per time (None: a
    gap); ``style`` is ``line``, ``step`` (held until the next time) or ``bars``."""

    label: str
    values: Sequence[float | None]
    panel: str = "lower"  # equity | lower
    style: str = "line"  # line | step | bars
    colour: str = "#555555"
    dashed: bool = False


def guard_spans(times: Sequence[datetime], acts_by_time: Mapping[datetime, Sequence[Any]]) -> list[tuple]:
    """The runs of consecutive decisions at which the same guard took the same action on the same symbol:
    ``(start, end, guard, action, symbol, first act)``, each run lasting until the decision after its last one
    (a decision's act holds until the next decision; the last one for a day)."""
    spans: list[tuple] = []
    open_: dict[tuple, list] = {}
    for i, t in enumerate(times):
        nxt = times[i + 1] if i + 1 < len(times) else t + (t - times[i - 1] if i else timedelta(days=1))
        seen = set()
        for a in acts_by_time.get(t, ()):
            key = (a.guard, a.action, a.symbol)
            if key in seen:
                continue
            seen.add(key)
            if key in open_ and open_[key][1] == t:
                open_[key][1] = nxt
            else:
                open_[key] = [t, nxt, a]
                spans.append((key, open_[key]))
    return [(s[0], s[1], *key, s[2]) for key, s in spans]


def guard_timeline_picture(
    title: str,
    times: Sequence[datetime],
    equity: Sequence[float],
    acts_by_time: Mapping[datetime, Sequence[Any]],
    *,
    series: Sequence[Series] = (),
    lower_label: str = "",
    lower_limit: tuple[str, float] | None = None,
    exits: Iterable[Any] = (),
) -> bytes:
    """A guard at work over a history of decisions: the equity (top) with the account's exits marked (anything
    with ``symbol, at, reason``, as ``guards.Fill``: stops red, take-profits green, sells grey), a lower panel of
    ``series`` (e.g. the drawdown against its limit, or the size wanted against the size the guard allowed) with
    ``lower_limit`` as a dashed line, and, shaded on both, every run of decisions at which a guard acted
    (``acts_by_time``: the acts of ``guards.evaluate`` or ``guard_targets`` at each decision time, coloured by
    action), numbered, with the first act's reason written under the chart."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num

    spans = guard_spans(times, acts_by_time)
    lower = [s for s in series if s.panel != "equity"]
    notes = [
        f"({i + 1}) {g} {action}{f' {symbol}' if symbol else ''} "
        f"({start:%m-%d}, {_days_text(end - start)}): {act.reason}"
        for i, (start, end, g, action, symbol, act) in enumerate(spans)
    ]
    lines = [w for n in notes for w in textwrap.wrap(n, 180, subsequent_indent="    ")] or ["no guard acted"]
    height = 2.6 + (1.1 if lower else 0) + 0.125 * len(lines)
    fig = _figure(9, height)
    bottom = (0.3 + 0.125 * len(lines)) / height
    grid = fig.add_gridspec(
        2 if lower else 1,
        1,
        height_ratios=[1.6, 1] if lower else [1],
        hspace=0.1,
        left=0.08,
        right=0.985,
        top=1 - 0.3 / height,
        bottom=bottom + 0.25 / height,
    )
    top = fig.add_subplot(grid[0])
    axes = [top] + ([fig.add_subplot(grid[1], sharex=top)] if lower else [])
    x = np.asarray(date2num(list(times)), dtype=float)  # days, as matplotlib draws dates (UTC)
    top.plot(x, equity, color="#1f3a93", lw=1.3, label="equity")
    for s in series:
        ax = top if s.panel == "equity" else axes[-1]
        values = np.array([np.nan if v is None else v for v in s.values], dtype=float)
        ls = "--" if s.dashed else "-"
        if s.style == "bars":
            width = float(x[1] - x[0]) * 0.7 if len(x) > 1 else 0.7
            ax.bar(x, values, width=width, color=s.colour, label=s.label, alpha=0.8)
        elif s.style == "step":
            ax.step(x, values, where="post", color=s.colour, lw=1.3, ls=ls, label=s.label)
        else:
            ax.plot(x, values, color=s.colour, lw=1.1, ls=ls, label=s.label)
    for f in exits:
        marker, colour = EXIT_MARKERS.get(f.reason, ("o", "grey"))
        at = float(date2num(f.at))
        y = float(np.interp(at, x, equity))
        top.plot([at], [y], marker=marker, color=colour, ms=7, ls="none", mec="black", mew=0.5)
        top.annotate(
            f"{f.symbol} {f.reason}",
            (at, y),
            xytext=(0, -13 if marker != "^" else 8),
            textcoords="offset points",
            ha="center",
            fontsize=6,
            color=colour,
        )
    for i, (start, end, _, action, _, _) in enumerate(spans):
        colour = ACTION_COLOURS.get(action, ACTED)
        for ax in axes:
            ax.axvspan(float(date2num(start)), float(date2num(end)), color=colour, alpha=0.16, lw=0)
        top.text(
            float(date2num(start + (end - start) / 2)),
            1.0,
            str(i + 1),
            transform=top.get_xaxis_transform(),
            ha="center",
            va="center",
            fontsize=7,
            color="white",
            weight="bold",
            clip_on=False,
            bbox={"boxstyle": "circle,pad=0.2", "fc": colour, "ec": "none"},
        )
    if lower_limit is not None:
        label, level = lower_limit
        axes[-1].axhline(level, color=ACTED, lw=1, ls="--")
        axes[-1].text(
            0.005, level, f" {label}", transform=axes[-1].get_yaxis_transform(), fontsize=6.5, va="bottom", color=ACTED
        )
    top.set_title(title, fontsize=9, loc="left", pad=9)
    top.set_ylabel("equity", fontsize=8)
    if lower:
        axes[-1].set_ylabel(lower_label, fontsize=8)
        top.tick_params(labelbottom=False)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6.5, loc="best", ncol=3, framealpha=0.85)
    counts = [float(v) for s in lower for v in s.values if v is not None]
    if counts and all(v.is_integer() and 0 <= v <= 10 for v in counts):  # a count (of stop-outs): whole ticks
        from matplotlib.ticker import MaxNLocator

        axes[-1].yaxis.set_major_locator(MaxNLocator(integer=True))
    locator = AutoDateLocator(maxticks=9)
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    fig.text(0.01, bottom - 0.08 / height, "\n".join(lines), fontsize=6.5, va="top", ha="left")
    return _png(fig)


def _days_text(span: timedelta) -> str:
    days = span.total_seconds() / 86_400
    return f"{days:g} day" + ("" if days == 1 else "s") if days == int(days) else f"{days:.1f} days"


# ------------------------------------------------------------------------------------------------------ text


def explain_text(
    account: str,
    as_of: date,
    *,
    days: AccountDays | None = None,
    limits: Sequence[GuardLimit] = (),
    regimes: Sequence[RegimeView] = (),
    sizes: Sequence[SizePath] = (),
    splits: Sequence[ProfitSplit] = (),
    records: Sequence[tuple[str, str]] = (),
) -> str:
    """The terminal summary that goes with the pictures: where the account stands, each guard against its limit,
    the regime, each symbol's record (what followed the last times), each size path and the latest profit
    split."""
    out = [f"{account} on {as_of}"]
    if days is not None and len(days.equity):
        equity = np.asarray(days.equity, dtype=float)
        peak = float(np.max(equity))
        held = {s: float(v[-1]) for s, v in sorted(days.positions.items()) if len(v) and v[-1]}
        positions = ", ".join(f"{s} {v:,.2f}" for s, v in held.items()) or "none"
        out.append(
            f"Where it stands: equity {equity[-1]:,.2f}, {float(_drawdown_pct(equity)[-1]):+.2f}% from its peak "
            f"{peak:,.2f}; cash {float(days.cash[-1]):,.2f}; positions: {positions}"
        )
    else:
        out.append("Where it stands: no history yet")
    if limits:
        out.append("Guards:")
        names = [g.guard + (f" {g.symbol}" if g.symbol else "") for g in limits]
        width = max(len(n) for n in names)
        for g, name in zip(limits, names, strict=True):
            what = f"{name:<{width}}"
            state = f"ACTED ({g.action or 'acted'}): {g.reason}" if g.acted else "clear"
            out.append(f"  {what}  {_distance_text(g)}  {state}".rstrip())
    else:
        out.append("Guards: none configured")
    for v in regimes:
        tomorrow = ", ".join(
            f"{k} {p:.0%}" for k, p in sorted(v.next_day_probabilities.items(), key=lambda kv: -kv[1])[:3]
        )
        out.append(f"Regime {v.symbol}: {v.current}; tomorrow: {tomorrow}")
    for symbol, line in records:
        out.append(f"Record {symbol}: {line}")
    for s in sizes:
        path = " -> ".join([f"{s.start_label} {s.start:.2%}"] + [f"{st.label} {st.value_after:.2%}" for st in s.steps])
        out.append(f"Size {s.symbol}: {path}; final target {s.final:.2%} of equity")
    if splits:
        month = max(r.month for r in splits)
        out.append(f"Profit split {month:%Y-%m}:")
        for r in sorted((r for r in splits if r.month == month), key=lambda r: r.account):
            to = f"{r.transfer:,.2f} to {r.to_account or 'no long-term account'}" if r.transfer > 0 else "no transfer"
            out.append(f"  {r.account}: profit {r.profit:+,.2f}, {to}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------- drawing


def _figure(width: float, height: float) -> Figure:
    """A figure of its own (no pyplot: nothing global to close, safe in threads), drawn by Agg."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    """The figure as a 256-colour PNG: a third of the size of matplotlib's RGBA file, with no visible loss on
    these flat-coloured charts. Fixed margins: a "tight" bounding box would draw the figure twice."""
    from PIL import Image

    canvas = fig.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[attr-defined]
    image = Image.fromarray(rgba).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()

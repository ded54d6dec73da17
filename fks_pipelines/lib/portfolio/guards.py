"""Protections that act on the account, decided point-in-time from what the account has lived through.

Freqtrade's protections (MaxDrawdown, StoplossGuard, CooldownPeriod) are the reference; these act on the
account's own equity and fills, and prop-firm rules are modelled on top:

- **max_drawdown**: the account's equity is ``max_drawdown`` or more below its peak of the last
  ``max_drawdown_lookback_days`` (as freqtrade's MaxDrawdown looks back) → no new entries for
  ``max_drawdown_halt_days`` days from the decision that saw it; once the halt ends it re-arms only on a new
  trigger, measured from the window's peak then; with ``max_drawdown_cut`` set, held positions
  are also cut to that share of themselves (0.5 halves them, 0 closes them).
- **stoploss_guard**: ``stoploss_count`` stop-outs within ``stoploss_window_days`` → no new entries in that
  symbol (or, with ``stoploss_scope: account``, in any symbol) for ``stoploss_pause_days`` days from the last one.
- **cooldown**: no re-entry into a symbol for ``cooldown_days`` days after the account left it (any exit: a sell,
  a stop, a take-profit).
- **daily_loss_limit**: a day that lost ``daily_loss_limit`` or more of the equity it started with → no new entries
  the next day.
- **prop firm** (``PropFirmRules``): a daily loss limit and a maximum drawdown, both shares of the initial
  balance (as the firms state them), the drawdown either static (from the initial balance) or trailing (from
  the equity's peak), and a profit target. Every buy is capped so that all positions stopped out at their
  own stops (with fees and slippage) lose less than the room left under the tighter rule; when nothing fits,
  the buy becomes a hold that says so. A reached profit target stops new entries (the challenge is passed).

"No new entries" means a buy cannot raise a symbol's allocation; sells, holds and stops still act. Only facts
known at the decision time are read: equity values at earlier decision times and fills stamped before it.
Thresholds default per capital tier (``TIER_PROTECTIONS``), and an account's portfolio file may override any.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta

from fks_pipelines.lib.errors import BadInputError

STOP_REASONS = ("stop_loss",)


@dataclass(frozen=True)
class Protections:
    max_drawdown: float | None = 0.25
    max_drawdown_halt_days: int = 7
    max_drawdown_cut: float | None = None
    stoploss_count: int | None = 2
    stoploss_window_days: int = 7
    stoploss_pause_days: int = 3
    stoploss_scope: str = "symbol"  # symbol | account
    cooldown_days: int | None = 1
    daily_loss_limit: float | None = 0.05
    max_drawdown_lookback_days: int = 30  # the peak the drawdown is measured from: the highest equity in this window


# Smaller accounts are guarded more tightly: they are the ones a run of losses ends ("$100 conservative → $1M
# aggressive", lib/portfolio/sizing.py). Chosen from the tiers' risk per trade, not fitted to any history.
TIER_PROTECTIONS = {
    "micro": Protections(0.20, 14, None, 2, 7, 7, "symbol", 2, 0.04),
    "small": Protections(0.20, 10, None, 2, 7, 5, "symbol", 1, 0.05),
    "medium": Protections(0.25, 7, None, 3, 7, 3, "symbol", 1, 0.06),
    "large": Protections(0.30, 7, None, 3, 7, 3, "symbol", 1, 0.08),
    "whale": Protections(0.35, 5, None, 4, 7, 2, "symbol", 1, 0.10),
}


@dataclass(frozen=True)
class PropFirmRules:
    daily_loss_limit: float  # share of the initial balance a day may lose
    max_drawdown: float  # share of the initial balance (static) or of the peak (trailing) the equity may lose
    drawdown: str = "static"  # static | trailing
    profit_target: float | None = None  # share of the initial balance; reached → no new entries


@dataclass(frozen=True)
class Act:
    """One act of a guard: what it did, to which symbol (None: the account), why, and until when."""

    guard: str  # max_drawdown | stoploss_guard | cooldown | daily_loss_limit | prop_daily_loss | prop_max_drawdown
    # | prop_profit_target
    action: str  # block_entry | cut_exposure | cap_size | no_size_fits
    symbol: str | None
    reason: str
    threshold: float | None = None
    value: float | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Fill:
    """An exit the account made, as the guards see it."""

    symbol: str
    at: datetime
    reason: str  # stop_loss | take_profit | sell


@dataclass
class History:
    """What the account has lived through up to a decision: equity at each earlier decision time (ascending,
    the last one being the current decision's), its exits, and its initial balance."""

    equity: Sequence[tuple[datetime, float]]
    exits: Sequence[Fill]
    initial: float


@dataclass
class Verdict:
    acts: list[Act] = field(default_factory=list)

    def blocked(self, symbol: str) -> list[Act]:
        return [a for a in self.acts if a.action == "block_entry" and a.symbol in (None, symbol)]

    @property
    def cut(self) -> float | None:
        cuts = [a.value for a in self.acts if a.action == "cut_exposure" and a.value is not None]
        return min(cuts) if cuts else None


def protections_from(overrides: dict | None, tier: str, *, where: str) -> Protections:
    """The tier's defaults with the portfolio file's overrides; unknown keys or values out of range are one-line
    errors naming ``where`` (the file and account)."""
    base = TIER_PROTECTIONS[tier]
    if not overrides:
        return base
    if not isinstance(overrides, dict):
        raise BadInputError(f"protections must be a mapping, not {type(overrides).__name__}", where=where)
    known = {f.name for f in fields(Protections)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise BadInputError(f"unknown protection(s) {unknown}; known: {sorted(known)}", where=where)
    p = replace(base, **overrides)
    _check(p, where)
    return p


def _share(value, name: str, where: str, *, allow_none: bool = True, upper: float = 1.0) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInputError(f"{name} must be a number, got {value!r}", where=where)
    if not 0 <= value <= upper:
        raise BadInputError(f"{name} must be between 0 and {upper:g}, got {value!r}", where=where)


def _days(value, name: str, where: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3650:
        raise BadInputError(f"{name} must be a whole number of days (0..3650), got {value!r}", where=where)


def _check(p: Protections, where: str) -> None:
    _share(p.max_drawdown, "max_drawdown", where)
    _share(p.max_drawdown_cut, "max_drawdown_cut", where)
    _share(p.daily_loss_limit, "daily_loss_limit", where)
    _days(p.max_drawdown_halt_days, "max_drawdown_halt_days", where)
    _days(p.max_drawdown_lookback_days, "max_drawdown_lookback_days", where)
    _days(p.stoploss_count, "stoploss_count", where, allow_none=True)
    _days(p.stoploss_window_days, "stoploss_window_days", where)
    _days(p.stoploss_pause_days, "stoploss_pause_days", where)
    _days(p.cooldown_days, "cooldown_days", where, allow_none=True)
    if p.stoploss_scope not in ("symbol", "account"):
        raise BadInputError(f"stoploss_scope must be symbol or account, got {p.stoploss_scope!r}", where=where)


def prop_rules_from(raw: dict | None, *, where: str) -> PropFirmRules | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadInputError(f"prop_firm must be a mapping, not {type(raw).__name__}", where=where)
    known = {f.name for f in fields(PropFirmRules)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BadInputError(f"unknown prop_firm rule(s) {unknown}; known: {sorted(known)}", where=where)
    for name in ("daily_loss_limit", "max_drawdown"):
        if name not in raw:
            raise BadInputError(f"prop_firm needs {name} (a share of the initial balance, e.g. 0.05)", where=where)
        _share(raw[name], name, where, allow_none=False)
        if raw[name] <= 0:
            raise BadInputError(f"prop_firm {name} must be above 0, got {raw[name]!r}", where=where)
    _share(raw.get("profit_target"), "profit_target", where, upper=10.0)
    if raw.get("drawdown", "static") not in ("static", "trailing"):
        raise BadInputError(f"prop_firm drawdown must be static or trailing, got {raw['drawdown']!r}", where=where)
    return PropFirmRules(**raw)


def as_dict(p: Protections | PropFirmRules | None) -> dict | None:
    return None if p is None else asdict(p)


def _max_drawdown(p: Protections, h: History, decided_at: datetime) -> list[Act]:
    if p.max_drawdown is None:
        return []
    lookback = timedelta(days=p.max_drawdown_lookback_days)
    acts: list[Act] = []
    halt_until: datetime | None = None
    window: deque[tuple[datetime, float]] = deque()  # the lookback window's candidates for its peak, decreasing
    for at, eq in h.equity:
        if at > decided_at:
            break
        while window and window[-1][1] <= eq:
            window.pop()
        window.append((at, eq))
        while window[0][0] < at - lookback:
            window.popleft()
        peak = window[0][1]
        dd = 1 - eq / peak if peak > 0 else 0.0
        if dd >= p.max_drawdown and (halt_until is None or at >= halt_until):
            halt_until = at + timedelta(days=p.max_drawdown_halt_days)  # the halt starts at the decision that saw it
            trigger_dd, trigger_at = dd, at
    if halt_until is not None and decided_at < halt_until:
        reason = (
            f"equity {trigger_dd:.1%} below its {p.max_drawdown_lookback_days}-day peak on {trigger_at:%Y-%m-%d} "
            f"(limit {p.max_drawdown:.0%}): no new entries until {halt_until:%Y-%m-%d}"
        )
        acts.append(Act("max_drawdown", "block_entry", None, reason, p.max_drawdown, trigger_dd, halt_until))
        if p.max_drawdown_cut is not None and trigger_at == decided_at:
            acts.append(
                Act(
                    "max_drawdown",
                    "cut_exposure",
                    None,
                    f"equity {trigger_dd:.1%} below its peak: positions cut to {p.max_drawdown_cut:.0%} of themselves",
                    p.max_drawdown,
                    p.max_drawdown_cut,
                    halt_until,
                )
            )
    return acts


def _stoploss_guard(p: Protections, h: History, decided_at: datetime) -> list[Act]:
    if p.stoploss_count is None or p.stoploss_count <= 0:
        return []
    window, pause = timedelta(days=p.stoploss_window_days), timedelta(days=p.stoploss_pause_days)
    stops = sorted((f for f in h.exits if f.reason in STOP_REASONS and f.at < decided_at), key=lambda f: f.at)
    groups: dict[str | None, list[Fill]] = {}
    for f in stops:
        groups.setdefault(None if p.stoploss_scope == "account" else f.symbol, []).append(f)
    acts = []
    for symbol, fs in groups.items():
        # The latest k-th stop within a window of the one k-1 before it: it starts the pause.
        for i in range(len(fs) - 1, p.stoploss_count - 2, -1):
            first, last = fs[i - p.stoploss_count + 1], fs[i]
            if last.at - first.at <= window:
                until = last.at + pause
                if decided_at < until:
                    what = symbol or "the account"
                    reason = (
                        f"{p.stoploss_count} stop-outs of {what} within {p.stoploss_window_days} days "
                        f"(last {last.at:%Y-%m-%d %H:%M}): no new entries until {until:%Y-%m-%d %H:%M}"
                    )
                    acts.append(
                        Act("stoploss_guard", "block_entry", symbol, reason, p.stoploss_count, p.stoploss_count, until)
                    )
                break
    return acts


def _cooldown(p: Protections, h: History, decided_at: datetime) -> list[Act]:
    if not p.cooldown_days:
        return []
    last: dict[str, Fill] = {}
    for f in h.exits:
        if f.at < decided_at and (f.symbol not in last or f.at > last[f.symbol].at):
            last[f.symbol] = f
    acts = []
    for symbol, f in sorted(last.items()):
        until = f.at + timedelta(days=p.cooldown_days)
        if decided_at < until:
            reason = f"left {symbol} ({f.reason}) at {f.at:%Y-%m-%d %H:%M}: no re-entry until {until:%Y-%m-%d %H:%M}"
            acts.append(Act("cooldown", "block_entry", symbol, reason, p.cooldown_days, None, until))
    return acts


def _daily_loss(p: Protections, h: History, decided_at: datetime) -> list[Act]:
    known = [(at, eq) for at, eq in h.equity if at <= decided_at]
    if p.daily_loss_limit is None or len(known) < 2 or known[-1][0] != decided_at:
        return []
    (_, start), (_, end) = known[-2], known[-1]
    loss = 1 - end / start if start > 0 else 0.0
    if loss < p.daily_loss_limit:
        return []
    until = decided_at + timedelta(days=1)
    reason = f"the day lost {loss:.1%} of its starting equity (limit {p.daily_loss_limit:.0%}): no new entries today"
    return [Act("daily_loss_limit", "block_entry", None, reason, p.daily_loss_limit, loss, until)]


def _prop_target(rules: PropFirmRules, h: History, decided_at: datetime) -> list[Act]:
    known = [eq for at, eq in h.equity if at <= decided_at]
    if rules.profit_target is None or not known or h.initial <= 0:
        return []
    gain = known[-1] / h.initial - 1
    if gain < rules.profit_target:
        return []
    reason = f"profit target reached: {gain:.1%} over the initial balance (target {rules.profit_target:.0%})"
    return [Act("prop_profit_target", "block_entry", None, reason, rules.profit_target, gain, None)]


def evaluate(p: Protections, rules: PropFirmRules | None, h: History, decided_at: datetime) -> Verdict:
    """Every guard's acts at ``decided_at``, from ``h`` read up to it."""
    acts = _max_drawdown(p, h, decided_at) + _stoploss_guard(p, h, decided_at)
    acts += _cooldown(p, h, decided_at) + _daily_loss(p, h, decided_at)
    if rules is not None:
        acts += _prop_target(rules, h, decided_at)
    return Verdict(acts)


def prop_room(rules: PropFirmRules, h: History, equity: float) -> tuple[float, str]:
    """The loss (in the account's currency) the account may still take before it breaks a rule, and which rule
    is the tighter. The day starts at the decision (fills happen from the next open), so the whole daily limit
    is available to the day, bounded by what the drawdown rule leaves."""
    daily = rules.daily_loss_limit * h.initial
    if rules.drawdown == "trailing":
        peak = max([eq for _, eq in h.equity] + [h.initial, equity])
        floor = (1 - rules.max_drawdown) * peak
    else:
        floor = (1 - rules.max_drawdown) * h.initial
    total = equity - floor
    return (daily, "prop_daily_loss") if daily <= total else (max(total, 0.0), "prop_max_drawdown")


def loss_at_stop(allocation: float, entry: float, stop: float, *, fee: float, slippage: float) -> float:
    """The equity share lost by ``allocation`` held from ``entry`` and stopped out at ``stop``: the move, the
    exit's slippage (a gap through the stop can lose more; the rule assumes the stop fills), and both fees."""
    if allocation <= 0 or entry <= 0:
        return 0.0
    exit_price = stop * (1 - slippage)
    return allocation * ((entry - exit_price) / entry + fee * (1 + exit_price / entry))


@dataclass
class Target:
    """One symbol's sized target, as the guards see it."""

    symbol: str
    action: str  # buy | sell | hold
    target: float  # allocation after acting
    current: float  # allocation before acting
    entry: float
    stop: float | None  # the stop the position will carry (None: no stop, the whole position counts as at risk)


def _risk(t: Target, allocation: float, fee: float, slippage: float) -> float:
    if t.stop is None or not 0 < t.stop < t.entry:
        return max(allocation, 0.0)
    return loss_at_stop(allocation, t.entry, t.stop, fee=fee, slippage=slippage)


def guard_targets(
    targets: Sequence[Target],
    verdict: Verdict,
    *,
    rules: PropFirmRules | None = None,
    history: History | None = None,
    equity: float = 0.0,
    fee: float = 0.0,
    slippage: float = 0.0,
) -> tuple[list[Target], list[Act]]:
    """The targets once the guards have acted, and every act that changed one (plus the account-wide acts,
    recorded even when nothing was to buy, so a halted account says so every day it is halted)."""
    out = [replace(t) for t in targets]
    acts: list[Act] = [a for a in verdict.acts if a.symbol is None]
    cut = verdict.cut
    for t in out:
        if t.target > t.current:
            blocking = verdict.blocked(t.symbol)
            if blocking:
                t.target, t.action = t.current, "hold"
                acts += [a for a in blocking if a.symbol is not None]
        if cut is not None and t.current > 0 and t.target > t.current * cut:
            t.target, t.action = round(t.current * cut, 6), "sell"
    if rules is not None and history is not None and equity > 0:
        room, rule = prop_room(rules, history, equity)
        share = room / equity
        held = sum(_risk(t, min(t.target, t.current), fee, slippage) for t in out)
        left = share - held
        for t in sorted(out, key=lambda t: t.symbol):
            if t.target <= t.current:
                continue
            wanted = _risk(t, t.target, fee, slippage) - _risk(t, t.current, fee, slippage)
            if left <= 0:
                reason = (
                    f"no size fits: held positions already risk {held:.2%} of equity at their stops, "
                    f"the room under {rule} is {share:.2%}"
                )
                acts.append(Act(rule, "no_size_fits", t.symbol, reason, share, held))
                t.target, t.action = t.current, "hold"
            elif wanted > left:
                per_unit = _risk(t, 1.0, fee, slippage)
                capped = math.floor((t.current + left / per_unit) * 1e6) / 1e6
                capped = max(min(capped, t.target), t.current)
                reason = (
                    f"size capped from {t.target:.2%} to {capped:.2%} of equity: stopped out, the account would "
                    f"break {rule} (room {share:.2%} of equity)"
                )
                acts.append(Act(rule, "cap_size", t.symbol, reason, share, t.target))
                left -= _risk(t, capped, fee, slippage) - _risk(t, t.current, fee, slippage)
                t.target = capped
                if t.target <= t.current:
                    t.action = "hold"
            else:
                left -= wanted
    return out, acts

"""The decision pictures are valid, small, non-trivial PNGs that follow their inputs, survive the edge cases a
new account meets (no history, one regime, nothing clamped, a loss month), and the text names what they show."""

from __future__ import annotations

import io
from collections import namedtuple
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from PIL import Image

from fks_pipelines.lib.db.analytics import RegimeDay, RegimeTransition
from fks_pipelines.lib.portfolio.sizing import Proposal, limits, size
from fks_pipelines.lib.quant.regimes import REGIMES
from fks_pipelines.lib.recommend import pictures
from fks_pipelines.lib.recommend.pictures import (
    AccountDays,
    GuardLimit,
    ProfitSplit,
    RegimeView,
    SizePath,
    account_picture,
    explain_text,
    guard_limits_from_acts,
    profit_split_picture,
    regime_picture,
    size_path,
    size_waterfall_picture,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MONTH = date(2026, 11, 1)


def _image(png: bytes) -> Image.Image:
    assert png[:8] == PNG_SIGNATURE
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _assert_picture(png: bytes) -> Image.Image:
    """A decodable PNG of a readable size, under the 80 KB budget, with more than a handful of colours."""
    image = _image(png)
    width, height = image.size
    assert width >= 400 and height >= 200
    assert len(png) < 80_000
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 8
    return image


def _account(last: float = 1_040.0) -> AccountDays:
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
    btc = [0.0] * 5 + [300.0 + 4 * i for i in range(25)]
    equity = [1_000.0] * 5 + [1_000.0 + 4 * i - (60 if 12 < i < 20 else 0) for i in range(25)]
    equity[-1] = last
    cash = [e - b for e, b in zip(equity, btc, strict=True)]
    return AccountDays(days, equity, cash, {"BTCUSDT": btc})


LIMITS = [
    GuardLimit("max_drawdown", 0.20, 0.06),
    GuardLimit("daily_loss_limit", 0.05, 0.01),
    GuardLimit("stoploss_guard", 2, 1, unit="count", symbol="ETHUSDT"),
    GuardLimit("prop_max_drawdown", 0.10, 0.04),
]


def _regime(current: str = "up_low_vol") -> RegimeView:
    row = {r: (0.5 if r == current else 0.1) for r in REGIMES}
    transitions = [
        RegimeTransition("BTCUSDT", r, {o: (0.6 if o == r else 0.08) for o in REGIMES}, 1 / 6) for r in REGIMES
    ]
    return RegimeView("BTCUSDT", current, row, transitions, as_of=date(2026, 12, 3))


def _splits(profit: float = 800.0) -> list[ProfitSplit]:
    transfer = max(profit, 0.0) / 2
    return [
        ProfitSplit(MONTH, "personal", "long-term", 10_000, 10_000 + profit, profit, transfer),
        ProfitSplit(MONTH, "prop", "long-term", 25_000, 25_500, 500, 250),
    ]


SIZE = size_path(
    "BTCUSDT",
    tier="small",
    tier_cap=0.15,
    confidence=0.6,
    clamps=[{"field": "target_allocation", "from": 0.09, "to": 0.064, "rule": "risk per trade 0.38% to the stop"}],
    guard_steps=[("prop_max_drawdown: cap_size", 0.041)],
)


@pytest.mark.parametrize(
    "draw",
    [
        lambda: account_picture("personal", _account(), LIMITS),
        lambda: regime_picture(_regime()),
        lambda: size_waterfall_picture(SIZE),
        lambda: profit_split_picture(_splits()),
    ],
    ids=["account", "regime", "size", "profit_split"],
)
def test_each_picture_is_a_small_non_trivial_png(draw) -> None:
    _assert_picture(draw())


def test_account_picture_follows_the_equity_and_the_guards() -> None:
    base = account_picture("personal", _account(), LIMITS)
    assert account_picture("personal", _account(last=900.0), LIMITS) != base
    acted = [*LIMITS[:-1], GuardLimit("prop_max_drawdown", 0.10, 0.11, acted=True, action="block_entry")]
    assert account_picture("personal", _account(), acted) != base


def test_account_picture_of_an_empty_account() -> None:
    _assert_picture(account_picture("new", AccountDays([], [], [], {})))
    # An account opened with nothing in it: zero equity has no drawdown to divide.
    zero = AccountDays([date(2026, 12, 1), date(2026, 12, 2)], [0.0, 0.0], [0.0, 0.0], {})
    _assert_picture(account_picture("new", zero, LIMITS))


def test_account_days_take_utc_timestamps_and_refuse_ragged_series() -> None:
    """Timestamps from the database (timestamptz) count for their UTC day; a series of the wrong length is an
    error naming it, not a silently shifted picture."""
    late = datetime(2026, 12, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 2026-12-02 04:30 UTC
    marks = AccountDays([late], [1_000.0], [1_000.0])
    assert str(marks.x()[0]) == "2026-12-02"
    _assert_picture(account_picture("tz", marks, LIMITS))
    with pytest.raises(ValueError, match=r"positions\[BTCUSDT\]"):
        AccountDays([date(2026, 12, 1), date(2026, 12, 2)], [1.0, 1.0], [1.0, 1.0], {"BTCUSDT": [0.0]})


def test_regime_picture_follows_today_and_draws_one_regime() -> None:
    assert regime_picture(_regime("up_low_vol")) != regime_picture(_regime("down_high_vol"))
    alone = RegimeView("BTCUSDT", "sideways_low_vol", {"sideways_low_vol": 1.0})
    _assert_picture(regime_picture(alone))
    assert alone.regimes() == ["sideways_low_vol"]


def test_regime_view_of_the_stored_rows() -> None:
    """A market_regimes row and the market's transition rows (both symbols) give the symbol's view."""
    bucket = datetime(2026, 12, 3, tzinfo=UTC)
    day = RegimeDay("ETHUSDT", bucket, "down_high_vol", {"down_high_vol": 0.7, "sideways_high_vol": 0.3})
    both = [*_regime().transitions, RegimeTransition("ETHUSDT", "down_high_vol", {"down_high_vol": 0.7}, 0.2)]
    view = RegimeView.of(day, both)
    assert (view.symbol, view.current, view.as_of) == ("ETHUSDT", "down_high_vol", date(2026, 12, 3))
    assert [getattr(t, "symbol", None) for t in view.transitions] == ["ETHUSDT"]
    assert view.regimes() == ["sideways_high_vol", "down_high_vol"]  # the layout's order
    _assert_picture(regime_picture(view))


def test_regime_layout_places_every_regime_the_model_labels() -> None:
    """The diagram's fixed layout names exactly the regimes lib/quant/regimes labels days with."""
    assert sorted(pictures._CIRCLE_ORDER) == sorted(REGIMES)
    assert sorted(_regime().regimes()) == sorted(REGIMES)


def test_size_path_follows_the_sizing_clamps_to_the_sized_target() -> None:
    """The path built from sizing.size's own clamp records ends at the allocation size() returned."""
    lim = limits(5_000, "personal")
    proposal = Proposal("buy", lim.max_allocation * 0.8, 100.0, 80.0, None)  # a wide stop: the risk cap bites
    sized, clamps = size(
        proposal,
        price=100.0,
        daily_volatility=0.04,
        current_allocation=0.0,
        cash_share=1.0,
        lim=lim,
    )
    assert any(c["field"] == "target_allocation" for c in clamps)  # the stop risk cut it
    path = size_path("BTCUSDT", tier=lim.tier.name, tier_cap=lim.max_allocation, confidence=0.8, clamps=clamps)
    assert path.final == pytest.approx(sized.target_allocation)
    assert path.steps[0].value_after == pytest.approx(proposal.target_allocation)
    assert size_waterfall_picture(path) != size_waterfall_picture(SIZE)


def test_size_waterfall_with_nothing_clamped() -> None:
    bare = SizePath("BTCUSDT", "tier micro: cap", 0.10)
    assert bare.final == 0.10
    _assert_picture(size_waterfall_picture(bare))
    # A proposal above the cap that nothing changed is still a step (an LLM's proposal, not the rules').
    path = size_path("BTCUSDT", tier="micro", tier_cap=0.10, confidence=0.5, proposed=0.08)
    assert [s.kind for s in path.steps] == ["confidence", "proposal"] and path.final == 0.08


def test_profit_split_with_a_loss_month_and_no_rows() -> None:
    loss = _splits(profit=-300.0)
    assert loss[0].transfer == 0
    _assert_picture(profit_split_picture(loss))
    assert profit_split_picture(loss) != profit_split_picture(_splits())
    only_losses = [ProfitSplit(MONTH, "personal", None, 1_000, 900, -100, 0)]
    _assert_picture(profit_split_picture(only_losses))
    assert _image(profit_split_picture([])).size[0] >= 400  # a valid picture that says there is no split yet


def test_profit_split_draws_the_latest_month_only() -> None:
    older = [ProfitSplit(date(2026, 10, 1), "personal", "long-term", 9_000, 10_000, 1_000, 500)]
    assert profit_split_picture(older + _splits()) == profit_split_picture(_splits())


def test_explain_text_names_each_guard_the_regime_the_size_and_the_split() -> None:
    acted = GuardLimit(
        "cooldown", 2, None, acted=True, unit="days", symbol="ETHUSDT", action="block_entry", reason="left 1 day ago"
    )
    text = explain_text(
        "personal",
        date(2026, 12, 3),
        days=_account(),
        limits=[*LIMITS, acted],
        regimes=[_regime()],
        sizes=[SIZE],
        splits=_splits(-300.0),
    )
    for g in [*LIMITS, acted]:
        assert g.guard in text
    assert "ACTED (block_entry): left 1 day ago" in text
    assert "6.00% of 20.00%: 14.00 pts left" in text
    assert "final target 4.10% of equity" in text
    assert "Regime BTCUSDT: up_low_vol" in text
    assert "personal: profit -300.00, no transfer" in text and "250.00 to long-term" in text
    assert "no history yet" in explain_text("new", date(2026, 12, 3))


def test_guard_limits_from_acts_keeps_every_field_of_an_act() -> None:
    Act = namedtuple("Act", "guard action symbol reason threshold value until")
    until = datetime(2026, 12, 5)
    acts = [
        Act("stoploss_guard", "block_entry", "ETHUSDT", "2 stop-outs in 7 days", 2, 2, until),
        Act("max_drawdown", "block_entry", None, "drawdown 26% >= 25%", 0.25, 0.26, until),
    ]
    limits_ = guard_limits_from_acts(acts)
    assert [(g.guard, g.unit, g.acted, g.symbol, g.until) for g in limits_] == [
        ("stoploss_guard", "count", True, "ETHUSDT", until),
        ("max_drawdown", "share", True, None, until),
    ]
    assert limits_[1].distance == pytest.approx(-0.01)
    assert "past it by 1.00 pts" in explain_text("a", date(2026, 12, 4), limits=limits_)


# ------------------------------------------------------------------------------ the guards at work (docs/guards.md)


def _examples_module():
    """scripts/pictures_examples.py, which draws docs/img/guard_*.png, loaded by its path (scripts/ is no package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "scripts" / "pictures_examples.py"
    spec = importlib.util.spec_from_file_location("pictures_examples", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pictures_examples"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def examples():
    return _examples_module()


def _act_days(example, guard: str | None = None) -> dict[int, list]:
    """The decisions (by index) at which an act (of ``guard``) was drawn."""
    index = {t: i for i, t in enumerate(example.times)}
    out = {index[t]: [a for a in acts if guard in (None, a.guard)] for t, acts in example.acts.items()}
    return {i: acts for i, acts in out.items() if acts}


def test_each_guard_picture_is_a_small_png_that_shows_the_acts(examples) -> None:
    built = examples.guard_examples()
    assert sorted(built) == [
        "guard_cooldown.png",
        "guard_daily_loss_limit.png",
        "guard_max_drawdown.png",
        "guard_prop_firm.png",
        "guard_stoploss_guard.png",
    ]
    for example in built.values():
        png = example.picture()
        image = _assert_picture(png)
        assert len(png) < 60_000 and image.size[0] <= 1_000
        assert example.acts, example.title  # every example makes its guard act
        unacted = pictures.guard_timeline_picture(example.title, example.times, example.equity, {})
        assert unacted != pictures.guard_timeline_picture(example.title, example.times, example.equity, example.acts)


def test_max_drawdown_example_halts_for_seven_days_from_the_first_decision_past_the_limit(examples) -> None:
    ex = examples.max_drawdown_example()
    equity = ex.equity
    drawdown = [1 - e / max(equity[max(0, i - 30) : i + 1]) for i, e in enumerate(equity)]
    first = next(i for i, d in enumerate(drawdown) if d >= 0.25)
    acted = _act_days(ex)
    assert sorted(acted) == list(range(first, first + 7))
    assert all(a.guard == "max_drawdown" and a.action == "block_entry" for acts in acted.values() for a in acts)
    assert max(drawdown[:first]) < 0.25 and max(drawdown[first + 7 :]) < 0.25


def test_max_drawdown_example_is_point_in_time(examples) -> None:
    """The acts up to a day do not move when the equity after it does."""
    ex = examples.max_drawdown_example()
    p = examples.replace(examples.OFF, max_drawdown=0.25, max_drawdown_halt_days=7, max_drawdown_lookback_days=30)
    cut = 33
    changed = ex.equity[: cut + 1] + [e * 0.5 for e in ex.equity[cut + 1 :]]
    again = examples.evaluate_each_day(p, None, ex.times, changed, [], 10_000)
    before = {t: v for t, v in ex.acts.items() if t <= ex.times[cut]}
    assert {t: v for t, v in again.items() if t <= ex.times[cut]} == before
    assert again != ex.acts  # the perturbation itself is seen after the cut


def test_stoploss_guard_example_pauses_the_symbol_after_two_stop_outs_only(examples) -> None:
    ex = examples.stoploss_guard_example()
    acted = _act_days(ex)
    # Stops on day 8 and day 12 (09:00): paused from the next decision until day 15 09:00.
    assert sorted(acted) == [13, 14, 15]
    assert {(a.guard, a.symbol) for acts in acted.values() for a in acts} == {("stoploss_guard", "ETHUSDT")}


def test_cooldown_example_holds_the_wanted_re_entries_for_two_days(examples) -> None:
    ex = examples.cooldown_example()
    acted = _act_days(ex, "cooldown")
    assert {i: sorted(a.symbol for a in acts) for i, acts in acted.items()} == {
        9: ["BTCUSDT"],
        10: ["BTCUSDT"],
        19: ["ETHUSDT"],
        20: ["ETHUSDT"],
    }
    series = {s.label: s.values for s in ex.series}
    assert series["BTCUSDT wanted"][9:12] == [30.0] * 3
    assert series["BTCUSDT after the guards"][9:12] == [0.0, 0.0, 30.0]  # the re-entry waits for day 11
    assert series["ETHUSDT after the guards"][19:22] == [0.0, 0.0, 20.0]


def test_daily_loss_limit_example_blocks_the_day_after_the_big_loss_only(examples) -> None:
    ex = examples.daily_loss_limit_example()
    acted = _act_days(ex)
    assert list(acted) == [17]  # the 7 % day ends at decision 17; the 4 % day (decision 9) stays under the limit
    (act,) = acted[17]
    assert act.guard == "daily_loss_limit" and act.value == pytest.approx(0.07, abs=1e-3)
    assert ex.equity[9] / ex.equity[8] - 1 == pytest.approx(-0.04, abs=1e-3)


def test_prop_firm_example_caps_refuses_and_stops_and_never_breaks_a_rule(examples) -> None:
    ex = examples.prop_firm_example()
    acts = [a for acts in ex.acts.values() for a in acts]
    assert {(a.guard, a.action) for a in acts} >= {
        ("prop_daily_loss", "cap_size"),
        ("prop_max_drawdown", "cap_size"),
        ("prop_max_drawdown", "no_size_fits"),
        ("prop_profit_target", "block_entry"),
    }
    target_days = sorted(i for i, a in _act_days(ex, "prop_profit_target").items() if a)
    assert target_days == [i for i, e in enumerate(ex.equity) if e >= 11_000]
    allowed = next(s.values for s in ex.series if s.label == "after the guards")
    rules, fee, slip = examples.PROP_RULES, examples.FEE, examples.SLIPPAGE
    for i, btc in enumerate(allowed):
        h = examples.history_at(ex.times, ex.equity, [], 10_000, i)
        room, _ = examples.prop_room(rules, h, ex.equity[i])
        at_stop = sum(examples.loss_at_stop(x, 100.0, 93.0, fee=fee, slippage=slip) for x in (btc / 100, 0.30))
        if btc > 0:  # a buy given a size: stopped out with ETHUSDT, the account keeps within the room
            assert at_stop * ex.equity[i] <= room + 1e-6
        assert btc <= 60.0


def test_guard_spans_merge_consecutive_decisions_of_one_act() -> None:
    Act = namedtuple("Act", "guard action symbol reason")
    times = [datetime(2026, 9, 1, tzinfo=UTC) + timedelta(days=i) for i in range(6)]
    block = Act("cooldown", "block_entry", "BTCUSDT", "left")
    other = Act("cooldown", "block_entry", "ETHUSDT", "left")
    spans = pictures.guard_spans(times, {times[0]: [block], times[1]: [block, other], times[3]: [block]})
    assert [(s[0], s[1], s[4]) for s in spans] == [
        (times[0], times[2], "BTCUSDT"),
        (times[1], times[2], "ETHUSDT"),
        (times[3], times[4], "BTCUSDT"),
    ]
    last = pictures.guard_spans(times, {times[5]: [block]})
    assert last[0][1] == times[5] + timedelta(days=1)  # the last decision's act holds for a day

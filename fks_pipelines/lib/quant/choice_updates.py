"""Weekly strategy choices over the whole history, decided incrementally (issue 21).

Every anchored decision time (Monday 00:00 UTC for a 7-day cadence) from the end of the warm-up (in-sample +
validation after the first bar) to the end of the data gets a decision (rolling_choice.py), each from the bars it
needs only, so the cost is linear in weeks. A configuration (strategies and their grids, windows, fees, objective,
min_dsr, search, code version) has a deterministic fingerprint and one run id derived from it: a later run with
the same configuration decides only the times it has not decided yet and fills the test-window records that have
ended since; a changed configuration is another run and re-decides everything. Decisions are written in small
transactions as they are made, so a killed run keeps what it decided and the next run goes on from there; the
tables end identical to an uninterrupted run's (only ``backtest_runs.created_at``/``last_run_at`` differ).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from fks_pipelines.lib.db import analytics
from fks_pipelines.lib.db.marts import bars_end, first_hourly_bar, read_bars
from fks_pipelines.lib.quant.backtest import BacktestConfig, run_sweep
from fks_pipelines.lib.quant.lookahead import Finding, screen_strategies
from fks_pipelines.lib.quant.rolling_choice import Decision, Windows, rolling_choices, span_needed
from fks_pipelines.lib.quant.strategies import Bars, Strategy
from fks_pipelines.lib.quant.strategy_files import StrategyFileError
from fks_pipelines.lib.quant.walk_forward import Search

BATCH = 8  # decisions per transaction: what a killed run can lose (they are decided again by the next run)


@dataclass(frozen=True)
class ChoiceSettings:
    """What a decision depends on. ``config`` is the asset's configuration as given (recorded with the run)."""

    strategies: list[Strategy]
    windows: Windows
    every: timedelta
    objective: str
    min_dsr: float
    backtest: BacktestConfig
    search: Search
    config: Mapping[str, Any]
    code_version: str

    def fingerprint(self) -> str:
        """sha256 of everything that changes a decision: the configuration, each strategy's grid and warm-up,
        the backtest's costs and the code version (not the worker count, which changes no result)."""
        payload = {
            "config": dict(self.config),
            "grids": {s.name: s.parameter_sets() for s in self.strategies},
            "warmups": {s.name: max((s.warmup(p) for p in s.parameter_sets()), default=0) for s in self.strategies},
            "backtest": {
                "fees": self.backtest.fees,
                "slippage": self.backtest.slippage,
                "init_cash": self.backtest.init_cash,
                "freq": self.backtest.freq,
                "allow_shorts": self.backtest.allow_shorts,
            },
            "code_version": self.code_version,
            "bar_interval": "1h",
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def run_id(self) -> str:
        return f"choices-{self.fingerprint()[:16]}"


@dataclass
class ChoiceUpdate:
    """What a run did: per symbol, the decisions it made and the test records it filled."""

    run_id: str
    data_end: datetime | None
    decided: dict[str, int]
    reported: dict[str, int]
    flagged: dict[str, list[Finding]]


def _utc(stamp: np.datetime64) -> datetime:
    return stamp.astype("datetime64[us]").item().replace(tzinfo=UTC)


def _choice_row(symbol: str, decided_at: datetime, d: Decision, test: dict | None, s: ChoiceSettings, bars: Bars):
    i, w, val = d.decision_index, s.windows, d.validation
    return analytics.StrategyChoice(
        symbol=symbol,
        strategy=d.strategy,
        params=d.params,
        objective=s.objective,
        oos_windows=1,
        oos_total_return=val["total_return"],
        oos_sharpe=val["sharpe"],
        oos_max_drawdown=val["max_drawdown"],
        oos_trades=val["trades"],
        buy_and_hold_return=val["buy_and_hold_return"],
        decided_at=decided_at,
        candidate=d.candidate,
        in_sample_start=_utc(bars["bucket"][i - w.validation - w.in_sample]),
        validation_start=_utc(bars["bucket"][i - w.validation]),
        n_trials=d.n_trials,
        dsr=d.dsr,
        pbo=d.pbo,
        configurations=d.configurations,
        test_end=decided_at + s.every,
        test_total_return=None if test is None else test["total_return"],
        test_sharpe=None if test is None else test["sharpe"],
        test_max_drawdown=None if test is None else test["max_drawdown"],
        test_trades=None if test is None else test["trades"],
        test_buy_and_hold_return=None if test is None else test["buy_and_hold_return"],
    )


def _bars_for(conn, market: str, symbol: str, start: datetime | None, end: datetime, span: int) -> Bars:
    """The symbol's hourly bars from ``span`` bars before ``start`` (all of them when ``start`` is None) to
    ``end``: a first read with a margin in time, and the whole history only when gaps made it too short."""
    if start is not None:
        bars = read_bars(conn, "fct_ohlcv_1h", market, [symbol], start - timedelta(hours=2 * span + 24 * 14), end)[
            symbol
        ]
        before = int(np.searchsorted(bars["bucket"], np.datetime64(start.replace(tzinfo=None), "us")))
        if before >= span:
            return bars
    return read_bars(conn, "fct_ohlcv_1h", market, [symbol], datetime(1970, 1, 1, tzinfo=UTC), end)[symbol]


PROBE_DAYS = 30  # the recent bars each strategy is tried on before a run


def usable_strategies(
    conn: psycopg.Connection, market: str, symbols: list[str], strategies: list[Strategy]
) -> tuple[list[Strategy], dict[str, str]]:
    """(the strategies that work, one-line error by name of those that do not): each strategy's ``signals`` is
    called once with its defaults on the last :data:`PROBE_DAYS` days of the first symbol holding bars, on this
    thread (where the per-call time limit applies). One that raises, exits or runs past FKS_STRATEGY_TIMEOUT is
    left out of the run, so it cannot stop the others. A strategy failing only with other parameters or on other
    bars still stops the run (a known limit)."""
    end = bars_end(conn, "fct_ohlcv_1h")
    if end is None:
        return strategies, {}
    bars = None
    for symbol in symbols:
        found = read_bars(conn, "fct_ohlcv_1h", market, [symbol], end - timedelta(days=PROBE_DAYS), end)[symbol]
        if len(found["close"]):
            bars = found
            break
    if bars is None:
        return strategies, {}
    usable, failed = [], {}
    for strategy in strategies:
        try:
            strategy.signals(bars, **dict(strategy.defaults))
        except StrategyFileError as exc:
            failed[strategy.name] = str(exc)
            continue
        usable.append(strategy)
    return usable, failed


def update_choices(
    conn: psycopg.Connection,
    market: str,
    symbols: list[str],
    settings: ChoiceSettings,
    *,
    lookahead_policy: str,
    log: Callable[[str], None] = lambda _: None,
) -> ChoiceUpdate:
    """Decide every decision time of ``symbols`` not yet decided under ``settings``'s configuration, and report the
    test windows that have ended, writing as it goes (:data:`BATCH` decisions per transaction). Then replace the
    run's analysts' grid per symbol: the latest candidate's whole grid over the latest decision's span."""
    run_id = settings.run_id()
    end = bars_end(conn, "fct_ohlcv_1h")
    update = ChoiceUpdate(run_id, end, {}, {}, {})
    if end is None:
        return update
    span = span_needed(settings.strategies, settings.windows)
    strategies = settings.strategies
    with conn.transaction():
        analytics.record_run(
            conn,
            run_id,
            fingerprint=settings.fingerprint(),
            code_version=settings.code_version,
            bar_interval="1h",
            data_start=end,
            data_end=end,
            objective=settings.objective,
            config=settings.config,
        )
    screened = False
    for symbol in symbols:
        decided = analytics.run_decisions(conn, run_id, market, symbol)
        # Only the bars the pending work needs: from the first decision not yet decided (or not yet reported).
        open_times = [t for t, (_, _, _, reported) in decided.items() if not reported]
        last = max(decided, default=None)
        first_pending = min([*open_times, *([last] if last is not None else [])], default=None)
        first_bar = first_hourly_bar(conn, market, symbol)
        warm = timedelta(hours=settings.windows.in_sample + settings.windows.validation)
        if decided and first_bar is not None and min(decided) > first_bar + warm + 2 * settings.every:
            first_pending = None  # history earlier than the first decision arrived since: read it all
        bars = _bars_for(conn, market, symbol, first_pending, end, span)
        if not len(bars["close"]):
            log(f"{symbol}: no hourly bars")
            continue
        if not screened:  # each strategy's signals on truncated vs full history, on a recent span of bars
            tail = {k: v[-4 * span :] for k, v in bars.items()}
            strategies, update.flagged = screen_strategies(strategies, tail, lookahead_policy)
            screened = True
        known = {t: (strategy, params, reported) for t, (strategy, params, _, reported) in decided.items()}
        made = reported = 0
        batch: list[tuple[datetime, Decision | None, dict | None]] = []
        latest: Decision | None = None

        for decided_at, decision, test in rolling_choices(
            bars,
            strategies,
            settings.windows,
            every=settings.every,
            end=end,
            objective=settings.objective,
            min_dsr=settings.min_dsr,
            config=settings.backtest,
            search=settings.search,
            decided=known,
        ):
            batch.append((decided_at, decision, test))
            if decision is None:
                reported += 1
            else:
                made += 1
                latest = decision
                if made % 26 == 0:
                    log(f"{symbol}: {made} decisions made (up to {decided_at:%Y-%m-%d})")
            if len(batch) >= BATCH:
                _write(conn, run_id, market, symbol, batch, settings, bars)
        _write(conn, run_id, market, symbol, batch, settings, bars)
        update.decided[symbol], update.reported[symbol] = made, reported
        log(f"{symbol}: {made} new decisions, {reported} test windows reported, {len(decided)} decided earlier")
        candidate, stored = analytics.grid_of(conn, run_id, market, symbol)
        if latest is not None or (candidate is not None and not stored):  # a killed run may have missed it
            last_time = max(decided) if latest is None else None
            _store_grid(conn, run_id, market, symbol, candidate, latest, last_time, bars, settings, span)
    with conn.transaction():  # the data range the run's decisions cover now
        start = analytics.run_first_input(conn, run_id)
        analytics.record_run(
            conn,
            run_id,
            fingerprint=settings.fingerprint(),
            code_version=settings.code_version,
            bar_interval="1h",
            data_start=start or end,
            data_end=end,
            objective=settings.objective,
            config=settings.config,
        )
    return update


def _write(conn, run_id: str, market: str, symbol: str, batch: list, settings: ChoiceSettings, bars: Bars) -> None:
    """Write a batch of decisions and test reports in one transaction, then empty it."""
    with conn.transaction():
        for decided_at, decision, test in batch:
            if decision is None:
                analytics.report_test(conn, run_id, market, symbol, decided_at, test or {})
            else:
                row = _choice_row(symbol, decided_at, decision, test, settings, bars)
                analytics.insert_choice(conn, run_id, market, row)
    batch.clear()


def _store_grid(
    conn,
    run_id: str,
    market: str,
    symbol: str,
    candidate: str | None,
    latest: Decision | None,
    last_time: datetime | None,
    bars: Bars,
    settings: ChoiceSettings,
    span: int,
) -> None:
    """The latest candidate's whole grid over the latest decision's span (bounded: never the whole history), for
    analysts comparing configurations. Computed outside any transaction; written in its own. The latest decision
    is ``latest`` (made by this run) or the stored one decided at ``last_time``."""
    by_name = {s.name: s for s in settings.strategies}
    strategy = by_name.get(latest.candidate if latest is not None else candidate or "")
    if strategy is None:
        return
    if latest is not None:
        index = latest.decision_index
    elif last_time is not None:
        index = int(
            np.searchsorted(bars["bucket"], np.datetime64(last_time.astimezone(UTC).replace(tzinfo=None), "us"))
        )
    else:
        return
    lo = max(0, index - span)
    window = {k: v[lo:index] for k, v in bars.items()}
    if not len(window["close"]):
        return
    grid = run_sweep(window, strategy, strategy.parameter_sets(), settings.backtest)
    with conn.transaction():
        analytics.insert_results(
            conn,
            run_id,
            market,
            symbol,
            strategy.name,
            _utc(window["bucket"][0]),
            _utc(window["bucket"][-1]) + timedelta(hours=1),
            grid.iter_rows(named=True),
        )

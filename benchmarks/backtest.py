"""Backtest sweep throughput: the project's code path (serial and on every core) vs bare vectorbt vs
backtesting.py.

Default: 3 symbols x 90 days of 1-minute bars (sample source) x the MA-crossover grid (397 combinations).
- project: ``run_sweep`` (signals, vectorbt's ``from_signals`` kernel on chunks, every metric) per symbol,
  serial (workers=1), and parallel: one ``SweepPool`` (a process per core, forked once for the three symbols'
  histories, as a walk-forward forks once for its windows; fork and shutdown timed) running each symbol's
  chunks in parallel;
- bare vectorbt: ``Portfolio.from_signals`` on the same precomputed entry/exit arrays (same chunks, same
  fees/slippage/fill rule) plus ``total_return`` only, single process; signal generation and freeing memory
  are not timed;
- backtesting.py: ``Backtest.run`` of the same MA crossover (SMA cross, entry/exit at the next bar's open,
  same fee) on a few combinations spread over the grid, one symbol, the first ``--peer-bars`` bars, scaled
  to the whole sweep (bars x combinations x symbols).
The three paths take turns symbol by symbol, so a change in a shared machine's load hits them alike; the JSON
gives the 1-minute load average at the end. The last line is one JSON object with backtests/s, peak RSS,
ratio_vs_bare_vectorbt (serial project vs bare, target >= 0.7), parallel_vs_bare_vectorbt (target >= 1.7 on
2 cores) and speedup_vs_backtesting_py (parallel project vs backtesting.py, target >= 100).

    python benchmarks/backtest.py [--days 90] [--symbols 3] [--peer-combos 4] [--peer-bars 20000]

``--stops``: instead, the stops cross-check. On the bundled real BTCUSDT hourly history (``--bars`` another
freqtrade 1h JSON file), the MA crossover's signals with a stop-loss, a take-profit, both, a trailing stop and a
trailing stop with a take-profit (and no stops, as the control), through the project's path (``fks backtest``'s
``report.backtest_symbol``: vectorbt's stop orders, exit reasons) and through backtesting.py's ``Backtest.run``
with ``sl``/``tp`` contingent orders on the same bars and the same signals. Every closed trade must have the same
entry and exit bars and prices. The last line is one JSON object: ``trades_equal``, ``n_trades``, the largest
relative price difference, the trades per exit reason, and the peer's conventions the project side matches
(docs/strategies.md, "Stops"):

- orders fill at the next bar's open (``trade_on_close=False``), one position at a time (buy only when flat,
  close on the exit signal), no slippage (backtesting.py's ``spread`` prices only the entry), the same commission;
- the stops are set from the entry's fill price once the entry has filled (``trade.sl``/``trade.tp`` in the
  entry bar's ``next``), so the entry bar's own range is not checked, as in vectorbt (``buy(sl=...)`` would
  check it: backtesting.py re-processes the new SL/TP on the entry bar);
- backtesting.py's stop-loss is processed first within a bar (SL orders go to the front of its queue), then the
  take-profit, then the close order from the exit signal: vectorbt's order (stop before signal, SL before TP);
- a trailing stop (backtesting.py has none built in) is the SL moved after each bar's close to the highest high
  since the bar after the entry x (1 - trailing_stop), as vectorbt's ``sl_trail`` moves it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
import warnings
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import _home  # noqa: E402, F401 - its own FKS_HOME and port, before anything reads the settings
import polars as pl  # noqa: E402

from fks_pipelines.lib.quant.backtest import (  # noqa: E402
    BacktestConfig,
    SweepPool,
    effective_chunk_size,
    portfolio,
    run_sweep,
    sweep_workers,
)
from fks_pipelines.lib.quant.strategies import chunks, signal_matrix  # noqa: E402
from fks_pipelines.lib.quant.strategy_files import load_strategies  # noqa: E402
from fks_pipelines.lib.sources.sample import SAMPLE_SYMBOLS, sample_klines  # noqa: E402

BUNDLED_BTC = Path(__file__).resolve().parent.parent / "fks_pipelines" / "data" / "freqtrade" / "BTC_USDT-1h.json.gz"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def backtesting_py_seconds(bars, subset: list[dict], config: BacktestConfig, n_bars: int) -> float:
    """Seconds per backtest of ``n_bars`` bars with backtesting.py's ``Backtest.run`` (SMA crossover, orders
    at the next bar's open, the same commission), measured on the subset and scaled linearly in bars."""
    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(values, n):
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        fast = 20
        slow = 50

        def init(self):
            self.f = self.I(sma, self.data.Close, self.fast)
            self.s = self.I(sma, self.data.Close, self.slow)

        def next(self):
            if crossover(self.f, self.s):
                self.buy()
            elif crossover(self.s, self.f) and self.position:
                self.position.close()

    length = len(bars["close"])
    index = pd.date_range("2024-01-01", periods=length, freq="1min")
    frame = pd.DataFrame(
        {"Open": bars["open"], "High": bars["high"], "Low": bars["low"], "Close": bars["close"]}, index=index
    )
    # Whole units only in backtesting.py: cash large enough that every entry buys (as the project's fractional sizing).
    cash = config.init_cash * float(frame["Close"].max())
    backtest = Backtest(frame, SmaCross, cash=cash, commission=config.fees, finalize_trades=True)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in subset:
            backtest.run(**p)
    return (time.perf_counter() - t) / len(subset) * n_bars / length


STOP_CASES = (
    {},
    {"stop_loss": 0.03},
    {"take_profit": 0.05},
    {"stop_loss": 0.03, "take_profit": 0.05},
    {"trailing_stop": 0.05},
    {"trailing_stop": 0.05, "take_profit": 0.1},
)
STOP_PARAMS = ({"fast": 10, "slow": 40}, {"fast": 20, "slow": 50}, {"fast": 50, "slow": 200})


def freqtrade_bars(path: Path) -> dict:
    """open, high, low, close of a freqtrade OHLCV JSON file (optionally gzipped), oldest first."""
    import gzip

    import numpy as np

    raw = path.read_bytes()
    rows = np.asarray(json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw), dtype=np.float64)
    return {name: np.ascontiguousarray(rows[:, i + 1]) for i, name in enumerate(("open", "high", "low", "close"))}


def backtesting_py_stop_trades(bars, entries, exits, stops: dict, fees: float) -> list[tuple]:
    """(entry bar, exit bar, entry price, exit price) of each closed trade of backtesting.py on these signals
    with these stops, under the conventions in this module's docstring."""
    import numpy as np
    import pandas as pd
    from backtesting import Backtest, Strategy

    class Signals(Strategy):
        def init(self):
            self.entry = self.I(lambda: entries.astype(float), name="entry", plot=False)
            self.exit = self.I(lambda: exits.astype(float), name="exit", plot=False)

        def next(self):
            i = len(self.data) - 1
            if self.position:
                trade = self.trades[-1]
                if trade.entry_bar == i:  # filled at this bar's open: stops from the fill price
                    if "stop_loss" in stops:
                        trade.sl = trade.entry_price * (1 - stops["stop_loss"])
                    if "take_profit" in stops:
                        trade.tp = trade.entry_price * (1 + stops["take_profit"])
                if "trailing_stop" in stops:
                    reference = trade.entry_price
                    if i > trade.entry_bar:
                        reference = max(reference, float(np.max(self.data.High[trade.entry_bar + 1 : i + 1])))
                    trade.sl = reference * (1 - stops["trailing_stop"])
            if self.entry[-1] and not self.position:
                self.buy()
            elif self.exit[-1] and self.position:
                self.position.close()

    frame = pd.DataFrame(
        {"Open": bars["open"], "High": bars["high"], "Low": bars["low"], "Close": bars["close"]},
        index=pd.date_range("2017-08-17", periods=len(bars["close"]), freq="1h"),
    )
    cash = 1e6 * float(frame["Close"].max())  # whole units in backtesting.py: every entry buys
    backtest = Backtest(
        frame, Signals, cash=cash, commission=fees, trade_on_close=False, exclusive_orders=False, finalize_trades=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trades = backtest.run()._trades  # closed trades only (finalize_trades=False)
    return [(int(t.EntryBar), int(t.ExitBar), float(t.EntryPrice), float(t.ExitPrice)) for t in trades.itertuples()]


def stops_comparison(path: Path) -> dict:
    """The project's trades with stops vs backtesting.py's on the same bars and signals (module docstring)."""
    from collections import Counter

    from fks_pipelines.lib.quant.report import backtest_symbol

    bars = freqtrade_bars(path)
    config = BacktestConfig(fees=0.001, slippage=0.0, init_cash=10_000.0)
    base = load_strategies()["ma_cross"]
    n_trades, mismatches, max_diff, reasons = 0, [], 0.0, Counter()
    project_s = peer_s = 0.0
    for params in STOP_PARAMS:
        entries, exits = base.signals(bars, **params)
        for stops in STOP_CASES:
            strategy = replace(base, stops=stops)
            t = time.perf_counter()
            ours = backtest_symbol("BTCUSDT", bars, strategy, params, config).trades
            project_s += time.perf_counter() - t
            closed = [tr for tr in ours if not tr["exit_reason"].startswith("open at end")]
            reasons.update(tr["exit_reason"] for tr in closed)
            t = time.perf_counter()
            theirs = backtesting_py_stop_trades(bars, entries, exits, stops, config.fees)
            peer_s += time.perf_counter() - t
            n_trades += len(closed)
            mine = [(tr["entry_bar"], tr["exit_bar"], tr["entry_price"], tr["exit_price"]) for tr in closed]
            if len(mine) != len(theirs) or any(a[:2] != b[:2] for a, b in zip(mine, theirs, strict=False)):
                first = next((k for k, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a[:2] != b[:2]), None)
                mismatches.append(
                    {"params": params, "stops": stops, "ours": len(mine), "theirs": len(theirs), "first_diff": first}
                )
            for a, b in zip(mine, theirs, strict=False):
                for x, y in ((a[2], b[2]), (a[3], b[3])):
                    max_diff = max(max_diff, abs(x - y) / abs(y))
            print(f"  {params} {stops}: {len(mine)} vs {len(theirs)} trades", file=sys.stderr)
    return {
        "bars": len(bars["close"]),
        "source": path.name,
        "cases": len(STOP_PARAMS) * len(STOP_CASES),
        "n_trades": n_trades,
        "trades_equal": not mismatches and max_diff <= 1e-12,
        "max_rel_price_diff": max_diff,
        "exit_reasons": dict(sorted(reasons.items())),
        "mismatches": mismatches,
        "project_s": round(project_s, 2),
        "backtesting_py_s": round(peer_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--symbols", type=int, default=3)
    parser.add_argument("--peer-combos", type=int, default=4)
    parser.add_argument("--peer-bars", type=int, default=20_000)
    parser.add_argument("--stops", action="store_true", help="the stops cross-check instead of the throughput")
    parser.add_argument("--bars", type=Path, default=BUNDLED_BTC, help="--stops: a freqtrade 1h JSON file")
    args = parser.parse_args()
    if args.stops:
        print(json.dumps(stops_comparison(args.bars)))
        return

    symbols = list(SAMPLE_SYMBOLS)[: args.symbols]
    start = date(2024, 1, 1)
    minute = sample_klines(symbols, start, start + timedelta(days=args.days))
    bars_by_symbol = {
        s: {
            c: minute.filter(pl.col("symbol") == s)[c].cast(pl.Float64).to_numpy()
            for c in ("open", "high", "low", "close")
        }
        for s in symbols
    }
    strategy = load_strategies()["ma_cross"]
    params = strategy.parameter_sets()
    config = BacktestConfig(freq="1min", chunk_size=50, workers=1)
    parallel = replace(config, workers=0)
    n_bars = len(next(iter(bars_by_symbol.values()))["close"])
    total_backtests = len(params) * len(symbols)
    n_chunks = len(list(chunks(params, effective_chunk_size(n_bars, config))))
    workers = sweep_workers(parallel, n_chunks, n_bars * len(params))
    print(f"{len(symbols)} symbols x {n_bars} bars x {len(params)} combinations, {workers} workers", file=sys.stderr)

    # Warm numba's on-disk cache so neither path pays compilation.
    run_sweep({k: v[:2000] for k, v in bars_by_symbol[symbols[0]].items()}, strategy, params[:2], config)

    def bare_seconds(bars) -> float:
        seconds = 0.0
        for chunk in chunks(params, effective_chunk_size(n_bars, config)):
            entries, exits = signal_matrix(strategy, bars, chunk)  # precomputed, not timed
            t = time.perf_counter()
            pf = portfolio(bars, entries, exits, config)
            pf.total_return()
            seconds += time.perf_counter() - t
            del pf
            gc.collect(1)  # free each chunk's portfolio (not timed: a fair baseline)
        return seconds

    # The three paths take turns symbol by symbol, so a change in the load of a shared machine during the run
    # hits all three alike. The pool is forked once before the first symbol; the fork counts in the parallel time.
    project_s = parallel_s = bare_s = 0.0
    t = time.perf_counter()
    with SweepPool(bars_by_symbol, strategy, parallel, workers) as pool:
        parallel_s += time.perf_counter() - t
        for s in symbols:
            t = time.perf_counter()
            run_sweep(bars_by_symbol[s], strategy, params, config)
            project_s += time.perf_counter() - t
            t = time.perf_counter()
            pool.sweep(s, 0, n_bars, params)
            parallel_s += time.perf_counter() - t
            bare_s += bare_seconds(bars_by_symbol[s])
        t = time.perf_counter()
    parallel_s += time.perf_counter() - t  # the workers' shutdown
    project_rss = peak_rss_mb()
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  project serial: {project_s:.1f}s, peak RSS {project_rss:.0f} MB", file=sys.stderr)
    print(f"  project parallel: {parallel_s:.1f}s, peak worker RSS {worker_rss:.0f} MB", file=sys.stderr)
    print(f"  bare vectorbt: {bare_s:.1f}s", file=sys.stderr)

    peer_bars = {k: v[: args.peer_bars] for k, v in bars_by_symbol[symbols[0]].items()}
    subset = params[:: max(1, len(params) // args.peer_combos)][: args.peer_combos]  # spread over the grid
    peer_s = backtesting_py_seconds(peer_bars, subset, config, n_bars) * total_backtests
    print(f"  backtesting.py: {peer_s:.0f}s scaled to the sweep", file=sys.stderr)

    print(
        json.dumps(
            {
                "symbols": len(symbols),
                "bars": n_bars,
                "combinations": len(params),
                "cores": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2),  # other processes' share of the cores
                "workers": workers,
                "project_s": round(project_s, 2),
                "parallel_s": round(parallel_s, 2),
                "bare_vectorbt_s": round(bare_s, 2),
                "backtesting_py_scaled_s": round(peer_s, 1),
                "backtests_per_s": round(total_backtests / project_s, 1),
                "parallel_backtests_per_s": round(total_backtests / parallel_s, 1),
                "bar_steps_per_s": round(total_backtests * n_bars / parallel_s),
                "peak_rss_mb": round(project_rss),
                "peak_worker_rss_mb": round(worker_rss),
                "ratio_vs_bare_vectorbt": round(bare_s / project_s, 3),
                "parallel_vs_bare_vectorbt": round(bare_s / parallel_s, 3),
                "parallel_vs_serial": round(project_s / parallel_s, 3),
                "speedup_vs_backtesting_py": round(peer_s / parallel_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

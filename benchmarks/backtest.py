"""Backtest sweep throughput: the project's code path vs bare vectorbt vs a plain per-bar Python loop.

Default: 3 symbols x 90 days of 1-minute bars (sample source) x the MA-crossover grid (397 combinations).
- project: ``run_sweep`` (signals, chunked ``Portfolio.from_signals``, every metric) per symbol;
- bare vectorbt: ``Portfolio.from_signals`` on the same precomputed entry/exit arrays (same chunks, same
  fees/slippage/fill rule) plus ``total_return`` only; signal generation and freeing memory are not timed;
- loop: a plain per-bar Python loop with the same fill rule (each bar sums its two windows) on a few
  combinations spread over the grid, one symbol, scaled to the whole sweep; and the same loop hand-optimised
  with running sums (O(1) per bar), reported as speedup_vs_incremental_loop.
The last line is one JSON object with backtests/s, bar-steps/s, peak RSS, ratio_vs_bare_vectorbt (target
>= 0.7) and speedup_vs_loop (target >= 100).

    python benchmarks/backtest.py [--days 90] [--symbols 3] [--loop-combos 6]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

import polars as pl  # noqa: E402

from fks_pipelines.lib.quant.backtest import BacktestConfig, effective_chunk_size, portfolio, run_sweep  # noqa: E402
from fks_pipelines.lib.quant.strategies import STRATEGIES, chunks, signal_matrix  # noqa: E402
from fks_pipelines.lib.sources.sample import SAMPLE_SYMBOLS, sample_klines  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loop_backtest(bars, fast: int, slow: int, config: BacktestConfig, incremental: bool = False) -> float:
    """The MA crossover the way a plain event loop does it: per bar, fill any pending order at this bar's
    open, compute the two averages, check the cross, mark the position to market (equity and drawdown
    tracked bar by bar). ``incremental`` keeps running sums instead of summing each window (O(1) per bar: a
    hand-optimised loop, reported separately)."""
    opens, closes = bars["open"].tolist(), bars["close"].tolist()
    cash, size, pending = config.init_cash, 0.0, None
    fast_sum = slow_sum = 0.0
    prev_diff = None
    peak, max_dd = config.init_cash, 0.0
    for t in range(len(closes)):
        if pending == "buy" and size == 0.0:
            price = opens[t] * (1 + config.slippage)
            size = cash / (price * (1 + config.fees))
            cash -= size * price * (1 + config.fees)
        elif pending == "sell" and size > 0.0:
            cash += size * opens[t] * (1 - config.slippage) * (1 - config.fees)
            size = 0.0
        pending = None
        if incremental:
            fast_sum += closes[t] - (closes[t - fast] if t >= fast else 0.0)
            slow_sum += closes[t] - (closes[t - slow] if t >= slow else 0.0)
        if t >= slow - 1:
            if incremental:
                diff = fast_sum / fast - slow_sum / slow
            else:
                diff = sum(closes[t - fast + 1 : t + 1]) / fast - sum(closes[t - slow + 1 : t + 1]) / slow
            if prev_diff is not None:
                if diff > 0 >= prev_diff:
                    pending = "buy"
                elif diff < 0 <= prev_diff:
                    pending = "sell"
            prev_diff = diff
        equity = cash + size * closes[t]
        peak = max(peak, equity)
        max_dd = min(max_dd, equity / peak - 1)
    return cash + size * closes[-1]


def loop_seconds(bars, subset: list[dict], config: BacktestConfig, incremental: bool) -> float:
    t = time.perf_counter()
    for p in subset:
        loop_backtest(bars, p["fast"], p["slow"], config, incremental)
    return (time.perf_counter() - t) / len(subset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--symbols", type=int, default=3)
    parser.add_argument("--loop-combos", type=int, default=6)
    args = parser.parse_args()

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
    strategy = STRATEGIES["ma_cross"]
    params = strategy.parameter_sets()
    config = BacktestConfig(freq="1min", chunk_size=50)
    n_bars = len(next(iter(bars_by_symbol.values()))["close"])
    total_backtests = len(params) * len(symbols)
    print(f"{len(symbols)} symbols x {n_bars} bars x {len(params)} combinations", file=sys.stderr)

    # Warm numba's on-disk cache so neither path pays compilation.
    run_sweep({k: v[:2000] for k, v in bars_by_symbol[symbols[0]].items()}, strategy, params[:2], config)

    t = time.perf_counter()
    for s in symbols:
        run_sweep(bars_by_symbol[s], strategy, params, config)
    project_s = time.perf_counter() - t
    project_rss = peak_rss_mb()
    print(f"  project: {project_s:.1f}s, peak RSS {project_rss:.0f} MB", file=sys.stderr)

    bare_s = 0.0
    for s in symbols:
        bars = bars_by_symbol[s]
        for chunk in chunks(params, effective_chunk_size(n_bars, config)):
            entries, exits = signal_matrix(strategy, bars, chunk)  # precomputed, not timed
            t = time.perf_counter()
            pf = portfolio(bars, entries, exits, config)
            pf.total_return()
            bare_s += time.perf_counter() - t
            del pf
            gc.collect(1)  # free each chunk's portfolio as the project does (not timed: a fair baseline)
    print(f"  bare vectorbt: {bare_s:.1f}s", file=sys.stderr)

    bars = bars_by_symbol[symbols[0]]
    subset = params[:: max(1, len(params) // args.loop_combos)][: args.loop_combos]  # spread over the grid
    loop_s = loop_seconds(bars, subset, config, incremental=False) * total_backtests
    incremental_s = loop_seconds(bars, subset, config, incremental=True) * total_backtests
    print(f"  plain loop: {loop_s:.0f}s, incremental loop: {incremental_s:.0f}s, scaled to the sweep", file=sys.stderr)

    print(
        json.dumps(
            {
                "symbols": len(symbols),
                "bars": n_bars,
                "combinations": len(params),
                "project_s": round(project_s, 2),
                "bare_vectorbt_s": round(bare_s, 2),
                "loop_scaled_s": round(loop_s, 1),
                "incremental_loop_scaled_s": round(incremental_s, 1),
                "backtests_per_s": round(total_backtests / project_s, 1),
                "bar_steps_per_s": round(total_backtests * n_bars / project_s),
                "peak_rss_mb": round(project_rss),
                "ratio_vs_bare_vectorbt": round(bare_s / project_s, 3),
                "speedup_vs_loop": round(loop_s / project_s, 1),
                "speedup_vs_incremental_loop": round(incremental_s / project_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Years of real history end to end: the shared (or bundled) freqtrade BTC/ETH hourly bars backfilled through the
main job, raw -> marts -> regimes -> weekly choices -> state -> signals -> documents and embeddings ->
recommendations for paper accounts -> evaluation, and what it costs per day as the window grows.

Two scratch databases, each warmed up first (the data's first days up to --warmup-end, no account yet, so the
indicators, regimes and the first weekly choices have history behind them):
- "1 year": --start .. start + 1 year, timed;
- "4 years": --start .. start + 4 years, timed; then the rest of the data (to --end) as a second, incremental
  backfill of the same database, timed: the whole history, whose evaluation docs/evaluation.md publishes.
Each backfill is one range run of ``all_assets_job`` (the assets' single-run backfill policy), as `fks backfill`
submits it. Seconds per asset come from the runs' step events.

In the same process, on the same real bars, windows and grids: the rolling choice (every weekly decision of the
1-year window) against bare vectorbt (``Portfolio.from_signals`` on the same precomputed entry/exit arrays for the
same in-sample, validation and PBO windows).

The last line is one JSON object: seconds per asset and in total, days per second, ``per_day_ratio`` (the 4-year
window's seconds per day over the 1-year window's; target <= 1.2), ``choice_vs_bare_vectorbt`` (bare seconds over
the rolling choice's; target >= 0.8), peak RSS. With --report DIR it also writes the whole history's evaluation
(per window and calendar year), the weekly choices' summary and the equity/drawdown plot there.

    python benchmarks/backfill.py [--data DIR] [--symbols BTCUSDT,ETHUSDT] [--report docs/img]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import _home  # noqa: E402, F401  (its own FKS_HOME on a free port, before anything reads settings)

os.environ["FKS_PARTITIONS_START"] = "2017-01-01"  # daily partitions that reach the history (before definitions)
from _scratch import create_scratch_database, drop_scratch_database, step_seconds  # noqa: E402
from dagster import DagsterInstance  # noqa: E402
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG  # noqa: E402

from fks_pipelines.definitions import defs  # noqa: E402
from fks_pipelines.defs.dbt.resources import dbt_resource  # noqa: E402
from fks_pipelines.defs.shared import (  # noqa: E402
    EmbeddingModelResource,
    MarketDataResource,
    PostgresResource,
)
from fks_pipelines.lib.db.connect import connect  # noqa: E402
from fks_pipelines.lib.db.portfolio import import_accounts  # noqa: E402
from fks_pipelines.lib.portfolio.ledger import read_ledger  # noqa: E402
from fks_pipelines.lib.sources.freqtrade import whole_days  # noqa: E402
from fks_pipelines.settings import BUNDLED_FREQTRADE_DIR  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "binance" / "freqtrade"


class History:
    """One scratch database backfilled range after range through all_assets_job (one range run each)."""

    def __init__(self, name: str, data: Path, symbols: list[str]):
        self.url = create_scratch_database(name)
        self.instance = DagsterInstance.ephemeral()
        self.resources = {
            "database": PostgresResource(url=self.url),
            "market_data": MarketDataResource(
                source="freqtrade", freqtrade_dir=str(data), interval="1h", symbols=symbols
            ),
            "dbt": dbt_resource(),
            "embedding_model": EmbeddingModelResource(device="cpu"),
        }

    def backfill(self, first: date, last: date) -> tuple[float, dict[str, float]]:
        began = time.perf_counter()
        result = defs.resolve_job_def("all_assets_job").execute_in_process(
            instance=self.instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()},
            resources=self.resources,
            raise_on_error=True,
        )
        seconds = time.perf_counter() - began
        steps = step_seconds(self.instance, result.run_id)
        print(f"  {first} .. {last}: {seconds:.1f} s {json.dumps(steps)}", file=sys.stderr, flush=True)
        return seconds, steps

    def open_accounts(self, portfolio: Path, symbols: list[str], first: date) -> None:
        """The portfolio's paper accounts, opened at the close of ``first`` (their first decision)."""
        opening = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=1)
        accounts = read_ledger(portfolio, set(symbols))
        assert isinstance(accounts, list), f"{portfolio} is not a YAML ledger of accounts"
        with connect(self.url) as conn:
            import_accounts(conn, [replace(a, cash_at=opening) for a in accounts], "spot")

    def drop(self) -> None:
        drop_scratch_database(self.url)


def add(total: dict[str, float], steps: dict[str, float]) -> dict[str, float]:
    return {k: round(total.get(k, 0.0) + steps.get(k, 0.0), 2) for k in {*total, *steps}}


def choice_vs_bare(data: Path, symbol: str, first: date, last: date) -> dict[str, float]:
    """The rolling choice over [first, last] against bare vectorbt on the same decision windows and grids: for
    every decision and strategy, Portfolio.from_signals over the in-sample window (every parameter set), the
    validation window (the chosen set) and both (every set, the PBO's returns), on precomputed signals."""
    import numpy as np
    import vectorbt as vbt

    from fks_pipelines.defs.analytics.assets import StrategySelectionConfig
    from fks_pipelines.defs.analytics.resources import QuantResource
    from fks_pipelines.lib.quant.backtest import next_bar
    from fks_pipelines.lib.quant.rolling_choice import decision_indices, rolling_choices, span_needed
    from fks_pipelines.lib.quant.strategy_files import load_strategies
    from fks_pipelines.lib.sources.freqtrade import find_freqtrade_files, read_freqtrade_file

    (path, _), *_ = find_freqtrade_files(data, symbols=[symbol], intervals=["1h"])[0]
    frame = read_freqtrade_file(path).frame
    start = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(days=30)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    frame = frame.filter((frame["open_time"] >= start) & (frame["open_time"] < end))
    bars = {c: frame[c].cast(float).to_numpy() for c in ("open", "high", "low", "close", "volume")}
    bars["bucket"] = frame["open_time"].dt.replace_time_zone(None).to_numpy()
    config = StrategySelectionConfig().resolved(QuantResource())
    registry = load_strategies()  # the built-ins
    backtest, search, windows = config.validated(registry, workers=1)
    strategies = [registry[name] for name in config.strategy_names(registry)]
    every = timedelta(days=config.every_days)
    began = time.perf_counter()
    decisions = list(
        rolling_choices(
            bars,
            strategies,
            windows,
            every=every,
            end=end,
            objective=config.objective,
            min_dsr=config.min_dsr,
            config=backtest,
            search=search,
        )
    )
    project_s = time.perf_counter() - began
    span = span_needed(strategies, windows)
    bare_s = 0.0
    for _, index in decision_indices(bars["bucket"], every, end, windows.in_sample + windows.validation):
        lo = max(0, index - span)
        part = {k: v[lo:index] for k, v in bars.items()}
        n = len(part["close"])
        is_start, val_start = n - windows.validation - windows.in_sample, n - windows.validation
        for strategy in strategies:
            pairs = [strategy.signals(part, **p) for p in strategy.parameter_sets()]
            entries = next_bar(np.column_stack([e for e, _ in pairs]))
            exits = next_bar(np.column_stack([x for _, x in pairs]))
            t = time.perf_counter()
            for a, b, cols in (
                (is_start, val_start, slice(None)),
                (val_start, n, slice(0, 1)),
                (is_start, n, slice(None)),
            ):
                vbt.Portfolio.from_signals(
                    close=part["close"][a:b, None],
                    entries=entries[a:b, cols],
                    exits=exits[a:b, cols],
                    price=part["open"][a:b, None],
                    fees=backtest.fees,
                    slippage=backtest.slippage,
                    init_cash=backtest.init_cash,
                    direction="longonly",
                    freq="1h",
                ).value()
            bare_s += time.perf_counter() - t
    return {
        "choice_decisions": len(decisions),
        "choice_s": round(project_s, 2),
        "bare_vectorbt_s": round(bare_s, 2),
        "choice_vs_bare_vectorbt": round(bare_s / project_s, 3),
    }


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


def history_arguments(parser: argparse.ArgumentParser) -> None:
    """The history a benchmark replays: its data, symbols, first evaluated and last day, and the paper accounts."""
    parser.add_argument("--data", type=Path, default=SHARED if SHARED.is_dir() else BUNDLED_FREQTRADE_DIR)
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2018, 1, 1), help="First evaluated day.")
    parser.add_argument("--end", type=date.fromisoformat, help="Last day (default: the data's last whole day).")
    parser.add_argument("--portfolio", type=Path, default=ROOT / "examples" / "tiers_portfolio.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    history_arguments(parser)
    parser.add_argument("--report", type=Path, help="Write the whole history's evaluation and plot here.")
    parser.add_argument("--skip-short", action="store_true", help="Only the whole history (no 1-year window).")
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    held_from, held_to = whole_days(args.data, symbols, "1h")
    held_to = min(held_to, args.end or held_to)
    warmup = (held_from, args.start - timedelta(days=1))
    load_start = os.getloadavg()[0]
    out: dict = {"data": str(args.data), "symbols": symbols, "first_day": str(held_from), "last_day": str(held_to)}
    total_s, steps_total = 0.0, {}

    one_year_end = args.start + timedelta(days=364)
    if not args.skip_short:
        print(f"1 year: warm-up {warmup[0]} .. {warmup[1]}, then {args.start} .. {one_year_end}", file=sys.stderr)
        short = History("fks_bench_backfill_1y", args.data, symbols)
        try:
            s, steps = short.backfill(*warmup)
            total_s, steps_total = total_s + s, add(steps_total, steps)
            short.open_accounts(args.portfolio, symbols, args.start)
            short_s, steps = short.backfill(args.start, one_year_end)
            total_s, steps_total = total_s + short_s, add(steps_total, steps)
            out["one_year"] = {"days": 365, "seconds": round(short_s, 1), "steps_s": steps}
        finally:
            short.drop()

    four_year_end = args.start + timedelta(days=4 * 365 + 1 - 1)
    print(f"whole history: warm-up {warmup[0]} .. {warmup[1]}, then {args.start} .. {four_year_end}", file=sys.stderr)
    whole = History("fks_bench_backfill_all", args.data, symbols)
    try:
        s, steps = whole.backfill(*warmup)
        total_s, steps_total = total_s + s, add(steps_total, steps)
        out["warmup"] = {"days": (warmup[1] - warmup[0]).days + 1, "seconds": round(s, 1)}
        whole.open_accounts(args.portfolio, symbols, args.start)
        long_s, long_steps = whole.backfill(args.start, min(four_year_end, held_to))
        long_days = (min(four_year_end, held_to) - args.start).days + 1
        total_s, steps_total = total_s + long_s, add(steps_total, long_steps)
        out["four_years"] = {"days": long_days, "seconds": round(long_s, 1), "steps_s": long_steps}
        if four_year_end < held_to:
            rest_s, steps = whole.backfill(four_year_end + timedelta(days=1), held_to)
            total_s, steps_total = total_s + rest_s, add(steps_total, steps)
            out["rest"] = {"days": (held_to - four_year_end).days, "seconds": round(rest_s, 1), "steps_s": steps}
        if args.report:
            write_report(whole.url, args.report, symbols)
    finally:
        whole.drop()
    days_whole = (held_to - held_from).days + 1
    out["whole_history_days"] = days_whole
    out["whole_history_s"] = round(
        out["warmup"]["seconds"] + out["four_years"]["seconds"] + out.get("rest", {}).get("seconds", 0.0), 1
    )
    out["days_per_second"] = round(days_whole / out["whole_history_s"], 2)
    if "one_year" in out:
        out["per_day_ratio"] = round(
            (out["four_years"]["seconds"] / out["four_years"]["days"])
            / (out["one_year"]["seconds"] / out["one_year"]["days"]),
            3,
        )
    out["seconds_per_asset"] = steps_total
    out["all_runs_s"] = round(total_s, 1)
    out |= choice_vs_bare(args.data, symbols[0], args.start, one_year_end)
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_1m_start"] = round(load_start, 2)
    out["load_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


def write_report(url: str, folder: Path, symbols: list[str]) -> None:
    """The whole history's evaluation (every account, period and baseline), the weekly choices' summary and the
    equity/drawdown picture (log scale), for docs/evaluation.md."""
    from fks_pipelines.lib.db.analytics import choice_summary
    from fks_pipelines.lib.db.recommendations import evaluation_table
    from fks_pipelines.lib.recommend.report import account_curves, evaluation_picture

    folder.mkdir(parents=True, exist_ok=True)
    with connect(url) as conn:
        rows = evaluation_table(conn, period=None)
        choices = choice_summary(conn, "spot", symbols)
        evaluated = account_curves(conn, "spot", symbols)
    medium = [e for e in evaluated if e.account == "tier-medium"] or evaluated[:1]
    png = evaluation_picture(medium, log_scale=True)
    (folder / "evaluation.json").write_text(json.dumps({"evaluation": rows, "choices": choices}, default=str, indent=1))
    (folder / "evaluation_equity.png").write_bytes(png)
    print(f"  report written to {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()

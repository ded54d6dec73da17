"""`fks backtest`, `hyperopt`, `lookahead-analysis` and `plot`: one strategy (a built-in or a file in
FKS_STRATEGIES_DIR) on the marts' bars or on kline files, as freqtrade's commands of the same names."""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fks_pipelines.cli.options import (
    fee_option,
    file_option,
    interval_option,
    json_option,
    params_option,
    strategy_option,
    symbols_option,
    timerange_option,
)
from fks_pipelines.cli.types import Symbols
from fks_pipelines.lib.db.platform import database_urls
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.outputs import check_output
from fks_pipelines.settings import Settings

if TYPE_CHECKING:  # vectorbt, numba and polars: imported when a command runs, not for `fks --help`
    from fks_pipelines.lib.quant.strategies import Bars, Strategy


def _strategy(name: str, settings: Settings) -> Strategy:
    """The strategy by name (the built-ins and FKS_STRATEGIES_DIR's files, read now); an unknown name or a
    refused file: one line, exit 2."""
    from fks_pipelines.lib.quant.strategy_files import StrategyLimits, load_strategies

    limits = StrategyLimits(settings.strategy_max_grid, settings.strategy_timeout_s)
    strategies = load_strategies(settings.strategies_dir, limits)
    if name not in strategies and name not in strategies.errors:
        raise BadInputError(f"--strategy: unknown {name!r}; choose from {', '.join(strategies)}")
    return strategies[name]  # a refused file: its one-line error (StrategyFileError)


def _bars(
    settings: Settings,
    symbols: list[str] | None,
    interval: str | None,
    timerange: str | None,
    files: tuple[Path, ...],
) -> tuple[dict[str, Bars], str]:
    """The bars of --file, or of the marts for --symbols (default: the configured universe); the database is
    started only for the marts."""
    from fks_pipelines.lib.quant.inputs import load_bars

    return load_bars(
        symbols or list(settings.symbols),
        interval,
        timerange,
        files,
        market=settings.market,
        database_url=lambda: database_urls(settings)[0],
    )


@click.command()
@strategy_option
@symbols_option()
@timerange_option
@interval_option
@params_option
@fee_option
@json_option("One JSON object: the metrics and the trades.")
@click.option("--export", type=click.Path(dir_okay=False, path_type=Path), help="Write every trade (JSON) here.")
@click.option(
    "--days-per-year",
    type=click.FloatRange(1, 366),
    default=365.0,
    show_default=True,
    help="Annualisation (Sharpe, Sortino, CAGR): 365 for crypto; 252 is the equities convention.",
)
@click.option(
    "--open-trades",
    type=click.Choice(["count", "exclude"]),
    default="count",
    show_default=True,
    help="A trade open at the end: counted in the trade statistics (marked at the last close) or left out.",
)
@click.option(
    "--profit-factor",
    type=click.Choice(["pnl", "returns"]),
    default="pnl",
    show_default=True,
    help="Over trade PnL (inf with no loss) or trade returns (NaN with no loss, backtesting.py).",
)
@click.option(
    "--exposure",
    type=click.Choice(["exclude-exit-bar", "include-exit-bar"]),
    default="exclude-exit-bar",
    show_default=True,
    help="Bars ending with a position held, or also each exit bar (entry to exit inclusive, backtesting.py).",
)
@file_option
def backtest(
    strategy_name: str,
    symbols: list[str] | None,
    timerange: str | None,
    interval: str | None,
    pairs: tuple[str, ...],
    fee: float,
    as_json: bool,
    export: Path | None,
    days_per_year: float,
    open_trades: str,
    profit_factor: str,
    exposure: str,
    files: tuple[Path, ...],
) -> None:
    """One backtest of a strategy on the bars in the database (or --file): freqtrade-style tables of the
    summary, per symbol, per exit reason, and with --export every trade. Signals at bar t fill at t+1's open.
    The conventions options choose how the metrics count where platforms differ (docs/strategies.md)."""
    from fks_pipelines.lib.quant.backtest import Conventions
    from fks_pipelines.lib.quant.inputs import backtest_config, parse_params
    from fks_pipelines.lib.quant.report import backtest_symbol, json_ready, summary, text_report

    if export:
        check_output(export, "--export")
    settings = Settings.from_env()
    strategy = _strategy(strategy_name, settings)
    params = parse_params(strategy, pairs)
    bars, interval = _bars(settings, symbols, interval, timerange, files)
    conventions = Conventions(open_trades=open_trades, profit_factor=profit_factor, exposure=exposure.replace("-", "_"))
    config = backtest_config(interval, fee, days_per_year=days_per_year, conventions=conventions)
    results = [backtest_symbol(symbol, b, strategy, params, config) for symbol, b in bars.items()]
    totals = summary(results, config)
    trades = [t for r in results for t in r.trades]
    if export:
        export.write_text(json.dumps(json_ready({"strategy": strategy.name, "params": params, "trades": trades})))
    if as_json:
        payload = {
            "strategy": strategy.name,
            "params": params,
            "metrics": totals,
            "symbols": {r.symbol: r.metrics for r in results},
            "trades": trades,
        }
        click.echo(json.dumps(json_ready(payload)))
    else:
        click.echo(text_report(strategy, params, results, totals, trades=export is not None))


@click.command("lookahead-analysis")
@strategy_option
@symbols_option()
@timerange_option
@interval_option
@click.option("--samples", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Bars t checked.")
@click.option("--param-sets", type=click.IntRange(1, 1000), default=3, show_default=True, help="Parameter sets.")
@file_option
def lookahead_analysis(
    strategy_name: str,
    symbols: list[str] | None,
    timerange: str | None,
    interval: str | None,
    samples: int,
    param_sets: int,
    files: tuple[Path, ...],
) -> None:
    """Catch look-ahead bias: signals recomputed on the history truncated at sampled bars t must equal the
    full history's. Exit 1 listing the first bars and parameters where they differ; 0 for an honest strategy."""
    from fks_pipelines.lib.quant.lookahead import LookAheadError, lookahead_findings

    settings = Settings.from_env()
    strategy = _strategy(strategy_name, settings)
    bars, interval = _bars(settings, symbols, interval, timerange, files)
    began = time.perf_counter()
    for symbol, b in bars.items():
        findings = lookahead_findings(strategy, b, samples=samples, max_sets=param_sets)
        if findings:
            for f in findings:
                click.echo(f"{symbol} {f.line()}")
            raise LookAheadError(
                f"{strategy.name} uses the future: {len(findings)} signals changed when later bars were removed"
            )
    click.echo(
        f"{strategy.name}: no look-ahead in {len(bars)} symbols x {samples} truncation points x {param_sets} parameter "
        f"sets ({time.perf_counter() - began:.2f}s)"
    )


@click.command()
@strategy_option
@click.option(
    "--objective",
    type=click.Choice(["sharpe", "sortino", "calmar", "return_over_drawdown"]),
    default="sharpe",
    show_default=True,
)
@click.option("--search", "method", type=click.Choice(["grid", "optuna"]), default="grid", show_default=True)
@click.option("--trials", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Optuna trials.")
@click.option("--walk-forward", is_flag=True, help="Walk forward (in-sample choice, out-of-sample judgement).")
@click.option(
    "--in-sample", type=click.IntRange(10), default=336, show_default=True, help="Walk-forward in-sample bars."
)
@click.option("--out-of-sample", type=click.IntRange(1), default=96, show_default=True, help="Out-of-sample bars.")
@symbols_option()
@timerange_option
@interval_option
@fee_option
@json_option("One JSON object per symbol: the best parameters and score.")
@file_option
def hyperopt(
    strategy_name: str,
    objective: str,
    method: str,
    trials: int,
    walk_forward: bool,
    in_sample: int,
    out_of_sample: int,
    symbols: list[str] | None,
    timerange: str | None,
    interval: str | None,
    fee: float,
    as_json: bool,
    files: tuple[Path, ...],
) -> None:
    """Search a strategy's GRID for the best --objective: the whole grid (on every core, FKS_SWEEP_WORKERS),
    Optuna, or walked forward; a progress bar and a summary table (the sweep and walk-forward assets' code)."""
    from fks_pipelines.lib.quant.inputs import backtest_config, best_parameters
    from fks_pipelines.lib.quant.report import json_ready, table

    settings = Settings.from_env()
    strategy = _strategy(strategy_name, settings)
    bars, interval = _bars(settings, symbols, interval, timerange, files)
    config = backtest_config(interval, fee, settings.sweep_workers)
    steps = 0 if walk_forward else trials if method == "optuna" else len(strategy.parameter_sets())
    rows, out = [], {}
    for symbol, b in bars.items():
        choose = partial(
            best_parameters,
            symbol,
            b,
            strategy,
            config,
            objective=objective,
            method=method,
            trials=trials,
            walk_forward=walk_forward,
            in_sample=in_sample,
            out_of_sample=out_of_sample,
        )
        if not steps:  # walked forward: no bar
            chosen = choose()
        else:
            with click.progressbar(length=steps, label=f"{symbol} {method}", file=sys.stderr) as progress:
                seen = [0]

                def advance(done: int, seen: list[int] = seen) -> None:
                    progress.update(done - seen[0])
                    seen[0] = done

                chosen = choose(progress=advance)
        out[symbol] = chosen
        ret = chosen.get("total_return", chosen.get("oos_total_return", float("nan")))
        trades = chosen.get("trades", float("nan"))
        rows.append([symbol, json.dumps(chosen["params"]), f"{chosen['score']:.3f}", f"{ret:.2%}", f"{trades:.0f}"])
    if as_json:
        keep = ("params", "score", "objective", "total_return", "sharpe", "max_drawdown", "trades", "oos_total_return")
        click.echo(json.dumps(json_ready({s: {k: v for k, v in c.items() if k in keep} for s, c in out.items()})))
    else:
        what = "walk-forward (last window's choice, chained OOS return)" if walk_forward else method
        click.echo(f"{strategy.name}: best {objective} by {what}")
        click.echo(table(["Pair", "Params", objective, "Return", "Trades"], rows))


@click.command()
@strategy_option
@click.option("--symbol", "symbols", type=Symbols(), required=True, help="One symbol.")
@timerange_option
@interval_option
@params_option
@fee_option
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("plot.png"), show_default=True)
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="Also an interactive HTML (plotly).")
@file_option
def plot(
    strategy_name: str,
    symbols: list[str],
    timerange: str | None,
    interval: str | None,
    pairs: tuple[str, ...],
    fee: float,
    output: Path,
    html: Path | None,
    files: tuple[Path, ...],
) -> None:
    """A PNG of price with entries and exits, and the equity curve (optionally interactive HTML)."""
    from fks_pipelines.lib.quant.inputs import backtest_config, parse_params
    from fks_pipelines.lib.quant.plot import plot_backtest
    from fks_pipelines.lib.quant.report import backtest_symbol

    check_output(output, "--output")  # both before anything is drawn: no PNG left behind when --html is bad
    if html:
        check_output(html, "--html")
    settings = Settings.from_env()
    strategy = _strategy(strategy_name, settings)
    params = parse_params(strategy, pairs)
    bars, interval = _bars(settings, symbols, interval, timerange, files)
    symbol = symbols[0] if symbols else settings.symbols[0]
    if symbol not in bars:
        raise BadInputError(f"--symbol: no bars for {symbol}")
    result = backtest_symbol(symbol, bars[symbol], strategy, params, backtest_config(interval, fee))
    written = plot_backtest(result, f"{strategy.name} {dict(params)} on {symbol}", output, html)
    click.echo("wrote " + ", ".join(str(p) for p in written))

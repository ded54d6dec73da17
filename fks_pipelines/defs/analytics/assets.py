"""The quantitative layer over the marts: strategy choice by walk-forward validation, daily signals, and
the Markov regime model. Results land in the ``analytics`` schema for analysts."""

import base64
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from fks_pipelines import __version__
from fks_pipelines.defs.shared import OWNERS, MarketDataResource, PostgresResource, daily_partitions
from fks_pipelines.lib.db import analytics
from fks_pipelines.lib.db.marts import bars_end, read_bars, read_daily_closes
from fks_pipelines.lib.quant.backtest import OBJECTIVES, BacktestConfig, run_sweep
from fks_pipelines.lib.quant.regimes import REGIMES, RegimeConfig, regime_report
from fks_pipelines.lib.quant.selection import choose_strategy, indicator_state, signal_state
from fks_pipelines.lib.quant.strategies import DEFAULT_PARAMS, STRATEGIES
from fks_pipelines.lib.quant.walk_forward import Search

HOURLY = AssetKey(["marts", "fct_ohlcv_1h"])
DAILY = AssetKey(["marts", "fct_ohlcv_1d"])
HOURS_PER_YEAR = 24 * 365


class StrategySelectionConfig(Config):
    objective: str = Field(default="sharpe", description=f"One of {', '.join(OBJECTIVES)}.")
    history_days: int = Field(default=90, description="Days of hourly bars (up to the latest) to validate on.")
    in_sample_days: int = Field(default=14, description="Walk-forward in-sample length.")
    out_of_sample_days: int = Field(default=4, description="Walk-forward out-of-sample length (and step).")
    fees: float = Field(default=0.001, description="Per fill (Binance spot taker: 0.1%).")
    slippage: float = 0.0005
    init_cash: float = 10_000.0
    strategies: list[str] = Field(
        default_factory=lambda: list(STRATEGIES), description=f"Any of {', '.join(STRATEGIES)}."
    )
    allow_shorts: bool = Field(
        default=False, description="Trade both directions (exit signals open shorts); long-only spot otherwise."
    )
    search: str = Field(
        default="grid", description="'grid' (every parameter set) or 'optuna' (seeded TPE over the same grid values)."
    )
    optuna_trials: int = Field(default=30, description="Trials per walk-forward window when search is 'optuna'.")
    seed: int = Field(default=42, description="Optuna's sampler seed: the same seed gives the same choices.")

    def validated(self) -> tuple[BacktestConfig, Search]:
        """The backtest settings and the search, or a ValueError naming the bad field."""
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown or not self.strategies:
            raise ValueError(f"strategies: unknown {unknown or 'empty list'}; choose from {', '.join(STRATEGIES)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: {self.objective!r} is not one of {', '.join(OBJECTIVES)}")
        backtest = BacktestConfig(
            fees=self.fees, slippage=self.slippage, init_cash=self.init_cash, freq="1h", allow_shorts=self.allow_shorts
        )
        try:
            return backtest, Search(self.search, self.optuna_trials, self.seed)
        except ValueError as e:
            raise ValueError(f"search/optuna_trials: {e}") from e


def _png_markdown(curve: np.ndarray, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=90)
    ax.plot(curve, lw=1.2)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("out-of-sample hours")
    ax.set_ylabel("equity")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f"![{title}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


@asset(
    key_prefix="analytics",
    group_name="analytics",
    deps=[HOURLY],
    kinds={"vectorbt", "postgres"},
    owners=OWNERS,
    description=(
        "Per symbol, every strategy walked forward over the last history_days of hourly bars (parameters chosen "
        "in-sample by the objective, judged out-of-sample); the strategy with the best out-of-sample record and "
        "its latest parameters. Writes analytics.backtest_runs, backtest_results, strategy_choices."
    ),
)
def strategy_choices(
    context: AssetExecutionContext,
    config: StrategySelectionConfig,
    database: PostgresResource,
    market_data: MarketDataResource,
) -> MaterializeResult:
    backtest, search = config.validated()
    strategies = [STRATEGIES[name] for name in config.strategies]
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    with database.connection() as conn:
        end = bars_end(conn, "fct_ohlcv_1h")
        if end is None:
            raise ValueError("marts.fct_ohlcv_1h is empty: materialize the raw layer and the marts first")
        start = end - timedelta(days=config.history_days)
        bars_by_symbol = read_bars(conn, "fct_ohlcv_1h", market_data.market, market_data.symbols, start, end)
        choices, table_rows, curves = [], [], {}
        for symbol, bars in bars_by_symbol.items():
            context.log.info(
                f"{symbol}: walking {len(strategies)} strategies forward over {len(bars['close'])} hourly bars"
            )
            winner, candidates = choose_strategy(
                bars,
                strategies,
                objective=config.objective,
                in_sample=config.in_sample_days * 24,
                out_of_sample=config.out_of_sample_days * 24,
                bars_per_year=HOURS_PER_YEAR,
                config=backtest,
                search=search,
            )
            if winner is None:
                context.log.warning(f"{symbol}: {len(bars['close'])} bars are too few for one walk-forward window")
                continue
            choices.append((symbol, winner, bars))
            curves[symbol] = winner.curve
            for c in candidates:
                table_rows.append((symbol, c.strategy, c.params, c.oos, c is winner))
        with conn.transaction():  # the run, its choices and their grids land together or not at all
            analytics.insert_run(
                conn,
                run_id,
                code_version=__version__,
                bar_interval="1h",
                data_start=start,
                data_end=end,
                objective=config.objective,
                config=config.model_dump(),
            )
            for symbol, winner, bars in choices:
                times = bars["bucket"]
                decided_at = times[winner.decision_index].astype("datetime64[us]").item().replace(tzinfo=UTC)
                b_and_h = bars["close"][-1] / bars["close"][int(winner.windows["decision"][0])] - 1
                choice = analytics.StrategyChoice(
                    symbol=symbol,
                    strategy=winner.strategy,
                    params=winner.params,
                    objective=config.objective,
                    oos_windows=winner.windows.height,
                    oos_total_return=winner.oos["total_return"],
                    oos_sharpe=winner.oos["sharpe"],
                    oos_max_drawdown=winner.oos["max_drawdown"],
                    oos_trades=winner.oos["trades"],
                    buy_and_hold_return=float(b_and_h),
                    decided_at=decided_at,
                )
                analytics.insert_choice(conn, run_id, market_data.market, choice)
                # The winner's full-sample grid, for analysts comparing configurations.
                strategy = STRATEGIES[winner.strategy]
                grid = run_sweep(bars, strategy, strategy.parameter_sets(), backtest)
                data_start = times[0].astype("datetime64[us]").item().replace(tzinfo=UTC)
                analytics.insert_results(
                    conn, run_id, market_data.market, symbol, strategy.name, data_start, end, grid.iter_rows(named=True)
                )
    table = [
        "| symbol | strategy | params | OOS return | OOS Sharpe | OOS max DD | chosen |",
        "|---|---|---|---|---|---|---|",
    ]
    for symbol, name, params, oos, chosen in sorted(table_rows, key=lambda r: (r[0], -(r[3].get("sharpe") or -1e9))):
        table.append(
            f"| {symbol} | {name} | `{json.dumps(params)}` | {oos['total_return']:.2%} | {oos['sharpe']:.2f} |"
            f" {oos['max_drawdown']:.2%} | {'**yes**' if chosen else ''} |"
        )
    metadata = {
        "run_id": run_id,
        "objective": config.objective,
        "search": search.method
        if search.method == "grid"
        else f"optuna ({search.trials} trials/window, seed {search.seed})",
        "direction": "long and short" if config.allow_shorts else "long only",
        "data_range": f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC",
        "chosen": MetadataValue.json({s: {"strategy": w.strategy, "params": w.params} for s, w, _ in choices}),
        "candidates": MetadataValue.md("\n".join(table)),
    }
    for symbol, curve in curves.items():
        metadata[f"oos_equity_{symbol}"] = MetadataValue.md(_png_markdown(curve, f"{symbol}: out-of-sample equity"))
    return MaterializeResult(metadata=metadata)


@asset(
    key_prefix="analytics",
    group_name="analytics",
    deps=[HOURLY, AssetKey(["analytics", "strategy_choices"])],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),  # a range of days is one run (the loop below walks it)
    kinds={"polars", "postgres"},
    owners=OWNERS,
    description=(
        "Point-in-time state at the end of each UTC day: every indicator and each strategy's entry/exit on the "
        "last hourly bar of the day, using only bars up to it; strategies use their latest walk-forward choice "
        "decided before that moment (textbook defaults otherwise). Writes analytics.signals."
    ),
)
def signals(
    context: AssetExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> MaterializeResult:
    window = context.partition_time_window
    rows = []
    with database.connection() as conn:
        day = window.start
        while day < window.end:
            end = day + timedelta(days=1)
            bars_by_symbol = read_bars(
                conn, "fct_ohlcv_1h", market_data.market, market_data.symbols, end - timedelta(days=60), end
            )
            for symbol, bars in bars_by_symbol.items():
                if len(bars["close"]) == 0:
                    continue
                chosen = analytics.latest_choice(conn, market_data.market, symbol, before=end)
                params = {name: (STRATEGIES[name], dict(DEFAULT_PARAMS[name])) for name in STRATEGIES}
                if chosen:
                    params[chosen[0]] = (STRATEGIES[chosen[0]], chosen[1])
                state = indicator_state(bars)
                as_of = bars["bucket"][-1].astype("datetime64[us]").item().replace(tzinfo=UTC)
                rows.append(analytics.Signal(day, symbol, as_of, state, signal_state(bars, params)))
            day = end
        analytics.replace_signals(conn, market_data.market, market_data.symbols, window.start, window.end, rows)
    latest = [r for r in rows if r.bucket == max(x.bucket for x in rows)] if rows else []
    preview = ["| symbol | close | RSI 14 | MACD hist | entries | exits |", "|---|---|---|---|---|---|"]
    for _, symbol, _, st, sig in latest:
        entries = ", ".join(k for k, v in sig.items() if v["entry"]) or "-"
        exits = ", ".join(k for k, v in sig.items() if v["exit"]) or "-"
        preview.append(
            f"| {symbol} | {st['close']:.2f} | {st['rsi_14']:.1f} | {st['macd_hist']:.3f} | {entries} | {exits} |"
        )
    return MaterializeResult(metadata={"dagster/row_count": len(rows), "latest": MetadataValue.md("\n".join(preview))})


@asset(
    key_prefix="analytics",
    group_name="analytics",
    deps=[DAILY],
    kinds={"numpy", "postgres"},
    owners=OWNERS,
    description=(
        "Each day per symbol classified into a regime (trend up/down/sideways x high/low volatility, point-in-"
        "time), the next-day regime probabilities, and the transition matrix with its stationary distribution. "
        "Writes analytics.market_regimes and analytics.regime_transitions."
    ),
)
def market_regimes(
    context: AssetExecutionContext, database: PostgresResource, market_data: MarketDataResource
) -> MaterializeResult:
    import polars as pl

    with database.connection() as conn:
        days = read_daily_closes(conn, market_data.market, market_data.symbols)
        per_day, matrices = regime_report(days, RegimeConfig()) if days.height else (pl.DataFrame(), pl.DataFrame())
        regimes = [
            analytics.RegimeDay(r["symbol"], r["bucket"], r["regime"], {g: r[f"p_next_{g}"] for g in REGIMES})
            for r in per_day.iter_rows(named=True)
        ]
        transitions = [
            analytics.RegimeTransition(
                r["symbol"], r["from_regime"], {g: r[f"to_{g}"] for g in REGIMES}, r["stationary_share"]
            )
            for r in matrices.iter_rows(named=True)
        ]
        analytics.replace_regimes(conn, market_data.market, regimes, transitions)
    latest = per_day.group_by("symbol").agg(pl.all().sort_by("bucket").last()) if per_day.height else per_day
    summary = {r["symbol"]: r["regime"] for r in latest.iter_rows(named=True)} if latest.height else {}
    return MaterializeResult(
        metadata={"dagster/row_count": per_day.height, "latest_regimes": MetadataValue.json(summary)}
    )

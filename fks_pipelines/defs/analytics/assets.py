"""The quantitative layer over the marts: strategy choice by walk-forward validation, daily signals, and
the Markov regime model. Results land in the ``analytics`` schema for analysts."""

from datetime import timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from fks_pipelines import __version__
from fks_pipelines.defs.analytics.metadata import choices_metadata, signals_per_day
from fks_pipelines.defs.analytics.resources import QuantResource
from fks_pipelines.defs.shared import (
    OWNERS,
    MarketDataResource,
    PostgresResource,
    daily_partitions,
    one_run_at_a_time,
    table_metadata,
)
from fks_pipelines.lib.db import analytics
from fks_pipelines.lib.db.marts import read_daily_closes
from fks_pipelines.lib.quant.backtest import OBJECTIVES, BacktestConfig
from fks_pipelines.lib.quant.choice_updates import ChoiceSettings, update_choices, usable_strategies
from fks_pipelines.lib.quant.daily_state import daily_signals
from fks_pipelines.lib.quant.regimes import REGIMES, RegimeConfig, regime_report
from fks_pipelines.lib.quant.rolling_choice import Windows
from fks_pipelines.lib.quant.strategies import Strategy, builtin_names
from fks_pipelines.lib.quant.strategy_files import Registry
from fks_pipelines.lib.quant.walk_forward import Search

HOURLY = AssetKey(["marts", "fct_ohlcv_1h"])
DAILY = AssetKey(["marts", "fct_ohlcv_1d"])
HOURS_PER_YEAR = 24 * 365


class StrategySelectionConfig(Config):
    objective: str = Field(default="sharpe", description=f"One of {', '.join(OBJECTIVES)}.")
    in_sample_days: int = Field(default=7, description="In-sample window: each strategy's parameters are chosen here.")
    validation_days: int = Field(
        default=3, description="Validation window after it: the strategy (or cash) is chosen here."
    )
    every_days: int | None = Field(
        default=None,
        description="Days between decisions (Monday 00:00 UTC anchored for 7) and the test window's length; "
        "default: the quant resource's (FKS_CHOICE_EVERY_DAYS).",
    )
    min_dsr: float | None = Field(
        default=None,
        description="Deflated Sharpe Ratio the validation winner needs to be chosen over cash; default: the quant "
        "resource's (FKS_CHOICE_MIN_DSR).",
    )
    pbo_blocks: int = Field(default=8, description="CSCV blocks of the PBO (even; C(n, n/2) splits).")
    fees: float = Field(default=0.001, description="Per fill (Binance spot taker: 0.1%).")
    slippage: float = 0.0005
    init_cash: float = 10_000.0
    strategies: list[str] | None = Field(
        default=None,
        description=f"Built-ins ({', '.join(builtin_names())}) or FKS_STRATEGIES_DIR's files; default: every one.",
    )
    allow_shorts: bool = Field(
        default=False, description="Trade both directions (exit signals open shorts); long-only spot otherwise."
    )
    search: str = Field(
        default="grid", description="'grid' (every parameter set) or 'optuna' (seeded TPE over the same grid values)."
    )
    optuna_trials: int = Field(default=30, description="Trials per decision and strategy when search is 'optuna'.")
    seed: int = Field(default=42, description="Optuna's sampler seed: the same seed gives the same choices.")

    def resolved(self, quant: QuantResource) -> "StrategySelectionConfig":
        """This configuration with the defaults it leaves open (None) taken from ``quant``: what a run decides with
        (and what its fingerprint is computed from)."""
        every_days = quant.choice_every_days if self.every_days is None else self.every_days
        min_dsr = quant.choice_min_dsr if self.min_dsr is None else self.min_dsr
        return self.model_copy(update={"every_days": every_days, "min_dsr": min_dsr})

    def validated(self, strategies: Registry, workers: int) -> tuple[BacktestConfig, Search, Windows]:
        """The backtest settings (sweeping on ``workers`` processes), the search and the windows of a
        :meth:`resolved` configuration over the loaded ``strategies``, or a ValueError naming the bad field."""
        if self.every_days is None or self.min_dsr is None:
            raise ValueError("every_days/min_dsr: not resolved (StrategySelectionConfig.resolved(quant) first)")
        names = self.strategy_names(strategies)
        unknown = sorted(set(names) - set(strategies))
        if unknown or not names:
            raise ValueError(f"strategies: unknown {unknown or 'empty list'}; choose from {', '.join(strategies)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: {self.objective!r} is not one of {', '.join(OBJECTIVES)}")
        for name in ("in_sample_days", "validation_days", "every_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1 day, not {getattr(self, name)}")
        if not 0 <= self.min_dsr <= 1:
            raise ValueError(f"min_dsr: a probability in [0, 1], not {self.min_dsr}")
        if self.pbo_blocks < 2 or self.pbo_blocks % 2:
            raise ValueError(f"pbo_blocks: an even number >= 2, not {self.pbo_blocks}")
        backtest = BacktestConfig(
            fees=self.fees,
            slippage=self.slippage,
            init_cash=self.init_cash,
            freq="1h",
            allow_shorts=self.allow_shorts,
            workers=workers,
        )
        windows = Windows(self.in_sample_days * 24, self.validation_days * 24, self.every_days * 24, self.pbo_blocks)
        try:
            return backtest, Search(self.search, self.optuna_trials, self.seed), windows
        except ValueError as e:
            raise ValueError(f"search/optuna_trials: {e}") from e

    def choice_settings(
        self, strategies: list[Strategy], backtest: BacktestConfig, search: Search, windows: Windows
    ) -> ChoiceSettings:
        """What the decisions of a :meth:`resolved` and :meth:`validated` configuration depend on, over the
        ``strategies`` that work (one left out makes another configuration, another run, decided again once it
        works)."""
        if self.every_days is None or self.min_dsr is None:
            raise ValueError("every_days/min_dsr: not resolved (StrategySelectionConfig.resolved(quant) first)")
        return ChoiceSettings(
            strategies=strategies,
            windows=windows,
            every=timedelta(days=self.every_days),
            objective=self.objective,
            min_dsr=self.min_dsr,
            backtest=backtest,
            search=search,
            config={**self.model_dump(), "strategies": [s.name for s in strategies]},
            code_version=__version__,
        )

    def strategy_names(self, strategies: Registry) -> list[str]:
        """The configured strategies' names, or every loaded one's."""
        return list(strategies) if self.strategies is None else self.strategies


@asset(
    key_prefix="analytics",
    group_name="analytics",
    deps=[HOURLY],
    kinds={"vectorbt", "postgres"},
    owners=OWNERS,
    description=(
        "Per symbol, the strategy to trade decided at every anchored time (Monday 00:00 UTC for every_days=7) from "
        "the end of the warm-up to the last bar: parameters chosen in-sample, the strategy or cash chosen on the "
        "following validation window (cash unless the winner's return is positive after fees and its Deflated "
        "Sharpe Ratio reaches min_dsr), the choice reported on the later test window once it has ended, with the "
        "PBO of the selection. Every input of a decision is before its decided_at. Incremental: a configuration is "
        "one run (its id derived from the configuration's fingerprint) that decides only the times it has not "
        "decided yet; a changed configuration re-decides everything. Writes analytics.backtest_runs, "
        "backtest_results, strategy_choices."
    ),
)
@one_run_at_a_time
def strategy_choices(
    context: AssetExecutionContext,
    config: StrategySelectionConfig,
    database: PostgresResource,
    market_data: MarketDataResource,
    quant: QuantResource,
) -> MaterializeResult:
    registry = quant.registry()
    config = config.resolved(quant)
    backtest, search, windows = config.validated(registry, quant.sweep_workers)
    failed = dict(registry.errors)
    with database.connection() as conn:
        strategies, broken = usable_strategies(
            conn, market_data.market, market_data.symbols, [registry[n] for n in config.strategy_names(registry)]
        )
    failed.update(broken)
    _log_failed(context, failed)
    if not strategies:
        raise ValueError(f"every strategy failed: {'; '.join(failed.values())}")
    choice_settings = config.choice_settings(strategies, backtest, search, windows)
    with database.connection() as conn:
        update = update_choices(
            conn,
            market_data.market,
            market_data.symbols,
            choice_settings,
            lookahead_policy=quant.lookahead_policy,
            log=context.log.info,
        )
        if update.data_end is None:
            raise ValueError("marts.fct_ohlcv_1h is empty: materialize the raw layer and the marts first")
        rows = analytics.run_choices(conn, update.run_id, market_data.market, market_data.symbols)
        catalog = table_metadata(conn, "analytics.strategy_choices")
    for name, found in update.flagged.items():
        context.log.warning(f"{name} uses the future (flagged, FKS_LOOKAHEAD_POLICY=flag): {found[0].line()}")
    return MaterializeResult(
        metadata={**catalog, **choices_metadata(config, update, rows), "strategies_failed": MetadataValue.json(failed)}
    )


def _log_failed(context: AssetExecutionContext, failed: dict[str, str]) -> None:
    """One warning line per strategy left out of the run, naming it and why."""
    for name, reason in sorted(failed.items()):
        context.log.warning(f"strategy {name} skipped: {reason}")


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
        "decided before that moment (textbook defaults otherwise). Writes analytics.signals, and the chosen strategy's "
        "position at each close (flat/long/short, since, entry price, unrealised P&L) to analytics.strategy_state."
    ),
)
@one_run_at_a_time
def signals(
    context: AssetExecutionContext, database: PostgresResource, market_data: MarketDataResource, quant: QuantResource
) -> MaterializeResult:
    window = context.partition_time_window
    # user strategies that fail (at import, or raising, exiting or hanging in signals) are left out, named below
    registry = quant.registry()
    failed: dict[str, str] = dict(registry.errors)
    with database.connection() as conn:
        rows, states = daily_signals(
            conn, market_data.market, market_data.symbols, window.start, window.end, failed, registry
        )
        with conn.transaction():  # the signals and the strategy state of the window land together or not at all
            analytics.replace_signals(conn, market_data.market, market_data.symbols, window.start, window.end, rows)
            analytics.replace_strategy_state(
                conn, market_data.market, market_data.symbols, window.start, window.end, states
            )
        catalog = table_metadata(conn, "analytics.signals")
    _log_failed(context, failed)
    # Each partition's metadata describes its own day; the run's totals are labelled run_*.
    for key, metadata in signals_per_day(rows, states, window.start, window.end).items():
        context.add_asset_metadata(metadata, partition_key=key)
    del catalog["dagster/row_count"]  # each partition's, above
    return MaterializeResult(
        metadata={
            **catalog,
            "run_rows": len(rows),
            "run_days": (window.end - window.start).days,
            "run_first_day": f"{window.start:%Y-%m-%d}",
            "run_last_day": f"{window.end - timedelta(days=1):%Y-%m-%d}",
            "run_strategy_state_in_position": sum(1 for r in states if r.position != "flat"),
            "strategies_failed": MetadataValue.json(failed),
        }
    )


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
@one_run_at_a_time
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
        catalog = table_metadata(conn, "analytics.market_regimes")
    latest = per_day.group_by("symbol").agg(pl.all().sort_by("bucket").last()) if per_day.height else per_day
    summary = {r["symbol"]: r["regime"] for r in latest.iter_rows(named=True)} if latest.height else {}
    return MaterializeResult(
        metadata={
            **catalog,
            "regime_days": per_day.height,
            "transition_rows": len(transitions),
            "latest_regimes": MetadataValue.json(summary),
        }
    )

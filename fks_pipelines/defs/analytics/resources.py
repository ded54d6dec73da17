"""What the analytics layer takes from the settings, carried by a resource (set once from the settings model in
definitions.py; asset bodies never read the environment)."""

from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from fks_pipelines.lib.quant.strategy_files import Registry, StrategyLimits, load_strategies
from fks_pipelines.settings import Settings


def _default(name: str):
    """The settings model's default of ``name`` (the value when its variable is unset)."""
    return Settings.model_fields[name].default


class QuantResource(ConfigurableResource):
    """The strategy choice's defaults (a run's config may override them), what is done with a strategy that looks
    ahead, and how many processes a sweep runs on."""

    choice_every_days: int = Field(
        default=_default("choice_every_days"),
        ge=1,
        description="Days between strategy re-decisions, anchored to Monday 00:00 UTC (FKS_CHOICE_EVERY_DAYS).",
    )
    choice_min_dsr: float = Field(
        default=_default("choice_min_dsr"),
        ge=0,
        le=1,
        description="Deflated Sharpe Ratio the validation winner needs to be chosen over cash (FKS_CHOICE_MIN_DSR).",
    )
    lookahead_policy: Literal["refuse", "flag", "off"] = Field(
        default=_default("lookahead_policy"),
        description="A strategy that fails the look-ahead check: refuse, flag or off (FKS_LOOKAHEAD_POLICY).",
    )
    sweep_workers: int = Field(
        default=_default("sweep_workers"),
        ge=0,
        description="Processes a sweep runs its chunks on; 0: one per CPU core, 1: serial (FKS_SWEEP_WORKERS).",
    )
    strategies_dir: str | None = Field(
        default=None, description="A folder of the user's strategy files beside the built-ins (FKS_STRATEGIES_DIR)."
    )
    strategy_max_grid: int = Field(
        default=_default("strategy_max_grid"), description="GRID combinations one user strategy may search."
    )
    strategy_timeout_s: float = Field(
        default=_default("strategy_timeout_s"), description="Seconds one user strategy's signals call may take."
    )

    def registry(self) -> Registry:
        """The strategies a run trades, loaded at its start: the built-ins and the folder's files (a file that
        fails to load is kept as its error, named in the run's metadata)."""
        folder = Path(self.strategies_dir) if self.strategies_dir else None
        return load_strategies(folder, StrategyLimits(self.strategy_max_grid, self.strategy_timeout_s))

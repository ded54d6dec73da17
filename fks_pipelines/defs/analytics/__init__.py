"""Signals, walk-forward strategy choice and market regimes over the marts."""

from dagster import Definitions

from fks_pipelines.defs.analytics.assets import market_regimes, signals, strategy_choices

defs = Definitions(assets=[strategy_choices, signals, market_regimes])

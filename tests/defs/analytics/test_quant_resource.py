"""The strategy choice's defaults come from the quant resource (set once from the settings in definitions.py), and
a run's config overrides them; the fingerprinted configuration is the resolved one."""

from __future__ import annotations

import pytest

from fks_pipelines.defs.analytics.assets import StrategySelectionConfig
from fks_pipelines.defs.analytics.resources import QuantResource
from fks_pipelines.settings import Settings


def test_the_resource_defaults_are_the_settings_models():
    quant = QuantResource()
    defaults = Settings.model_fields
    assert quant.choice_every_days == defaults["choice_every_days"].default
    assert quant.choice_min_dsr == defaults["choice_min_dsr"].default
    assert quant.lookahead_policy == defaults["lookahead_policy"].default
    assert quant.sweep_workers == defaults["sweep_workers"].default
    assert quant.strategy_max_grid == defaults["strategy_max_grid"].default
    assert quant.strategy_timeout_s == defaults["strategy_timeout_s"].default
    assert quant.strategies_dir is None and "ma_cross" in quant.registry()  # the built-ins, no user folder


def test_a_config_left_open_takes_the_resources_values_and_a_set_one_wins():
    quant = QuantResource(choice_every_days=14, choice_min_dsr=0.9, sweep_workers=3)
    open_config = StrategySelectionConfig().resolved(quant)
    assert (open_config.every_days, open_config.min_dsr) == (14, 0.9)
    backtest, _, windows = open_config.validated(quant.registry(), quant.sweep_workers)
    assert (backtest.workers, windows.test) == (3, 14 * 24)
    set_config = StrategySelectionConfig(every_days=2, min_dsr=0.1).resolved(quant)
    assert (set_config.every_days, set_config.min_dsr) == (2, 0.1)
    assert set_config.model_dump()["every_days"] == 2  # what the run's fingerprint records


def test_an_unresolved_config_is_refused():
    with pytest.raises(ValueError, match="every_days/min_dsr: not resolved"):
        StrategySelectionConfig().validated(QuantResource().registry(), 1)

"""The raw layer (group, key prefix and schema `raw`): the klines asset and its quality checks."""

from dagster import Definitions

from fks_pipelines.defs.raw.assets import binance_klines
from fks_pipelines.defs.raw.checks import raw_checks

defs = Definitions(assets=[binance_klines], asset_checks=raw_checks)

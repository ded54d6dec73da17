"""The portfolio layer: group, key prefix and schema ``portfolio``."""

from dagster import Definitions

from fks_pipelines.defs.portfolio.assets import profit_splits

defs = Definitions(assets=[profit_splits])

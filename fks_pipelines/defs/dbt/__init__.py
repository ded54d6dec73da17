"""dbt in Dagster: the dbt project's models as assets (partitioned incremental marts + the rest), tests as checks."""

from dagster import Definitions

from fks_pipelines.defs.dbt.assets import dbt_daily_models, dbt_models

defs = Definitions(assets=[dbt_daily_models, dbt_models])

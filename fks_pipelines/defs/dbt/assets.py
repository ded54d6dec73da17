"""The dbt models as Dagster assets.

- ``dbt_daily_models``: the incremental marts (tag ``partitioned``), daily-partitioned like the raw layer; a
  run passes its partition window to dbt as ``--vars {min_date, max_date}``, and a backfill of N days is a
  single dbt invocation (single-run backfill policy);
- ``dbt_models``: everything else (staging and intermediate views, dimension tables), unpartitioned.
dbt tests become asset checks on the models they test. Every model's materialization carries
dagster/row_count and dagster/column_schema (dagster-dbt's fetch_row_counts and fetch_column_metadata, read from
the database after the build) and dagster/table_name.

Both run in the ``dbt`` pool and hold the database's dbt lock (lib/db/locks.py) while dbt runs: runs over
overlapping windows (a first boot's backfills) queue for dbt instead of rebuilding the same dates at once.
"""

import json

from dagster import AssetExecutionContext, BackfillPolicy
from dagster_dbt import DbtCliResource, dbt_assets

from fks_pipelines.defs.dbt.resources import dbt_connection, dbt_project
from fks_pipelines.defs.dbt.translator import FksDbtTranslator
from fks_pipelines.defs.shared import DBT_POOL, PostgresResource, daily_partitions
from fks_pipelines.lib.db.locks import DBT_BUILD, advisory_lock

MANIFEST = dbt_project().manifest_path
PARTITIONED = "tag:partitioned"


@dbt_assets(
    manifest=MANIFEST,
    project=dbt_project(),
    select=PARTITIONED,
    name="dbt_daily_models",
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    dagster_dbt_translator=FksDbtTranslator(),
    pool=DBT_POOL,
)
def dbt_daily_models(context: AssetExecutionContext, dbt: DbtCliResource, database: PostgresResource):
    window = context.partition_time_window
    dbt_vars = {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}
    database.ensure_schema()
    with advisory_lock(database.url, DBT_BUILD), dbt_connection(database.url):
        build = dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context)
        yield from build.stream().fetch_row_counts().fetch_column_metadata()


@dbt_assets(
    manifest=MANIFEST,
    project=dbt_project(),
    exclude=PARTITIONED,
    name="dbt_models",
    dagster_dbt_translator=FksDbtTranslator(),
    pool=DBT_POOL,
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, database: PostgresResource):
    database.ensure_schema()
    with advisory_lock(database.url, DBT_BUILD), dbt_connection(database.url):
        yield from dbt.cli(["build"], context=context).stream().fetch_row_counts().fetch_column_metadata()

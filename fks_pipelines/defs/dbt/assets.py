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
from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetMaterialization, BackfillPolicy, Output
from dagster_dbt import DbtCliInvocation, DbtCliResource, dbt_assets

from fks_pipelines.defs.dbt.resources import dbt_connection, dbt_project, manifest_for_database
from fks_pipelines.defs.dbt.translator import FksDbtTranslator
from fks_pipelines.defs.shared import DBT_POOL, PostgresResource, daily_partitions
from fks_pipelines.lib.db.connect import dbt_profile_env
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
    with advisory_lock(database.url, DBT_BUILD), dbt_connection(database.url):
        build = dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context)
        yield from _with_table_metadata(context, build, database.url)


@dbt_assets(
    manifest=MANIFEST,
    project=dbt_project(),
    exclude=PARTITIONED,
    name="dbt_models",
    dagster_dbt_translator=FksDbtTranslator(),
    pool=DBT_POOL,
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, database: PostgresResource):
    with advisory_lock(database.url, DBT_BUILD), dbt_connection(database.url):
        yield from _with_table_metadata(context, dbt.cli(["build"], context=context), database.url)


def _with_table_metadata(context: AssetExecutionContext, build: DbtCliInvocation, url: str) -> Iterator[Any]:
    """The build's events, each model's with its row count (tables; dagster-dbt does not count views), column
    schema and table name read from the run's database (the manifest's relation names moved there first: see
    manifest_for_database). A model's table is ``<database>.<key prefix>.<name>``: the key prefix is its schema."""
    dbname = dbt_profile_env(url)["FKS_DBT_DBNAME"]
    build.manifest = manifest_for_database(build.manifest, dbname)
    for event in build.stream().fetch_row_counts().fetch_column_metadata():
        if isinstance(event, AssetMaterialization):
            key = event.asset_key
        elif isinstance(event, Output):
            key = context.asset_key_for_output(event.output_name)
        else:
            yield event
            continue
        yield event.with_metadata({**event.metadata, "dagster/table_name": ".".join([dbname, *key.path])})

{#-
  Materialization for the OHLCV rollups (fct_ohlcv_1h, fct_ohlcv_1d).
  - TimescaleDB present: a continuous aggregate (hierarchical: 1d is built on the 1h aggregate) with a refresh
    policy; a partition run refreshes exactly its window, so the daily job sees fresh rows at once.
  - Plain PostgreSQL: dbt's incremental table with the window_replace strategy (see incremental.sql).
  Models are written once, with the fks_* macros, and do not know which of the two they become.
-#}
{% materialization fks_rollup, adapter='postgres' %}
  {%- if fks_has_timescaledb() -%}
    {{ return(fks_continuous_aggregate()) }}
  {%- else -%}
    {{ return(materialization_incremental_default()) }}
  {%- endif -%}
{% endmaterialization %}

{% macro fks_continuous_aggregate() %}
  {%- set target = this.incorporate(type='view') -%}
  {%- set existing = adapter.get_relation(this.database, this.schema, this.identifier) -%}
  {%- set min_date, max_date = fks_window_bounds() -%}
  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {%- if existing is not none and (should_full_refresh() or existing.type != 'view') -%}
    {%- call statement('drop_existing', auto_begin=False) -%}
      drop {{ 'materialized view' if existing.type == 'view' else existing.type }} if exists {{ existing }} cascade
    {%- endcall -%}
    {%- set existing = none -%}
  {%- endif -%}
  {%- if existing is none -%}
    {%- call statement('main', auto_begin=False) -%}
      create materialized view {{ target }}
      with (timescaledb.continuous, timescaledb.materialized_only = true) as
      {{ sql }}
      with no data
    {%- endcall -%}
    {%- call statement('policy', auto_begin=False) -%}
      select add_continuous_aggregate_policy('{{ target }}',
        start_offset => interval '{{ var("fks_cagg_refresh_lookback", "3 days") }}',
        end_offset => null,
        schedule_interval => interval '{{ var("fks_cagg_refresh_every", "1 hour") }}',
        if_not_exists => true)
    {%- endcall -%}
  {%- else -%}
    {%- call statement('main', auto_begin=False) -%} select 1 {%- endcall -%}
  {%- endif -%}
  {#- CALL cannot run inside a transaction block: the profile runs with autocommit. -#}
  {%- call statement('refresh', auto_begin=False) -%}
    call refresh_continuous_aggregate('{{ target }}',
      {{ "timestamptz '" ~ min_date ~ " 00:00:00+00'" if min_date else 'null' }},
      {{ "timestamptz '" ~ max_date ~ " 00:00:00+00'" if max_date else 'null' }})
  {%- endcall -%}
  {%- set grant_config = config.get('grants') -%}
  {%- do apply_grants(target, grant_config, should_revoke=True) -%}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target]}) }}
{% endmacro %}

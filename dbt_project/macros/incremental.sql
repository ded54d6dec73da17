{#-
  Daily partitions reach dbt as vars `min_date` / `max_date` (ISO dates, half-open [min, max)), from the
  Dagster partition window. An incremental run reads only that window (plus a lookback where rolling windows
  need it) and replaces exactly that window in the target; without the vars (or on --full-refresh) everything
  is rebuilt. Both give identical tables.
-#}

{#- is_incremental(), usable from macros: an existing table of an incremental model, not a full refresh. Without a
    database (dbt parse, or the SQL linter's var `fks_offline`): false, the full-refresh SQL. -#}
{% macro fks_is_incremental() -%}
  {%- if not execute or var('fks_offline', false) -%}{{ return(false) }}{%- endif -%}
  {%- set relation = adapter.get_relation(this.database, this.schema, this.table) -%}
  {{ return(relation is not none and relation.type == 'table'
            and model.config.materialized == 'incremental' and not should_full_refresh()) }}
{%- endmacro %}

{% macro fks_window_bounds() -%}
  {{ return((var('min_date', none), var('max_date', none))) }}
{%- endmacro %}

{#- `and <column> in window` for the rows a model reads (lookback widens the start). -#}
{% macro fks_input_window(column, lookback=none) -%}
  {%- set min_date, max_date = fks_window_bounds() -%}
  {%- if fks_is_incremental() and min_date and max_date -%}
    and {{ column }} >= timestamptz '{{ min_date }} 00:00:00+00'{% if lookback %} - interval '{{ lookback }}'{% endif %}
    and {{ column }} < timestamptz '{{ max_date }} 00:00:00+00'
  {%- endif -%}
{%- endmacro %}

{#- `and <column> in window` for the rows a model writes. -#}
{% macro fks_output_window(column) -%}
  {%- set min_date, max_date = fks_window_bounds() -%}
  {%- if fks_is_incremental() and min_date and max_date -%}
    and {{ column }} >= timestamptz '{{ min_date }} 00:00:00+00'
    and {{ column }} < timestamptz '{{ max_date }} 00:00:00+00'
  {%- endif -%}
{%- endmacro %}

{#-
  Custom incremental strategy "window_replace": delete the partition window from the target, insert the new
  rows, in dbt's transaction. Unlike delete+insert on a unique key, buckets that no longer exist upstream
  (a re-load with fewer bars) disappear too.
-#}
{% macro get_incremental_window_replace_sql(arg_dict) -%}
  {%- set target = arg_dict["target_relation"] -%}
  {%- set source = arg_dict["temp_relation"] -%}
  {%- set time_column = config.require("event_time") -%}
  {%- set columns = adapter.get_columns_in_relation(target) | map(attribute="quoted") | join(", ") -%}
  {%- set min_date, max_date = fks_window_bounds() -%}
  delete from {{ target }}
  {%- if min_date and max_date %}
  where {{ time_column }} >= timestamptz '{{ min_date }} 00:00:00+00'
    and {{ time_column }} < timestamptz '{{ max_date }} 00:00:00+00'
  {%- endif %};
  insert into {{ target }} ({{ columns }})
  select {{ columns }} from {{ source }};
{%- endmacro %}

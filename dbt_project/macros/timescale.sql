{#-
  The one place where TimescaleDB and plain PostgreSQL differ. Models call these macros and never branch
  themselves; both paths must give identical results (the tests compare them).
-#}

{#- Whether the database has TimescaleDB. Without a database (dbt parse, or the SQL linter's var `fks_offline`):
    false, the plain PostgreSQL SQL. -#}
{% macro fks_has_timescaledb() -%}
  {%- if not execute or var('fks_offline', false) -%}{{ return(false) }}{%- endif -%}
  {%- set result = run_query("select count(*) from pg_extension where extname = 'timescaledb'") -%}
  {{ return(result.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- Start of the time bucket holding `column`: time_bucket with TimescaleDB, date_bin (same origin) without. -#}
{% macro fks_bucket(width, column) -%}
  {%- if fks_has_timescaledb() -%}
    time_bucket(interval '{{ width }}', {{ column }})
  {%- else -%}
    date_bin(interval '{{ width }}', {{ column }}, timestamptz '2000-01-01 00:00:00+00')
  {%- endif -%}
{%- endmacro %}

{#- First / last value of `value` ordered by `time_column` within a group. -#}
{% macro fks_first(value, time_column) -%}
  {%- if fks_has_timescaledb() -%}
    first({{ value }}, {{ time_column }})
  {%- else -%}
    (array_agg({{ value }} order by {{ time_column }} asc))[1]
  {%- endif -%}
{%- endmacro %}

{% macro fks_last(value, time_column) -%}
  {%- if fks_has_timescaledb() -%}
    last({{ value }}, {{ time_column }})
  {%- else -%}
    (array_agg({{ value }} order by {{ time_column }} desc))[1]
  {%- endif -%}
{%- endmacro %}

{#-
  Post-hook for time-series tables: a hypertable on `time_column` when TimescaleDB is there (chunk interval
  from the var `fks_chunk_interval`), a plain btree index on `time_column` otherwise.
-#}
{% macro fks_time_series(time_column) -%}
  {%- if fks_has_timescaledb() -%}
    select create_hypertable('{{ this }}', by_range('{{ time_column }}', interval '{{ var("fks_chunk_interval", "7 days") }}'),
                             if_not_exists => true, migrate_data => true)
  {%- else -%}
    create index if not exists "{{ this.identifier }}__{{ time_column }}_idx" on {{ this }} ({{ time_column }})
  {%- endif -%}
{%- endmacro %}

{#- A sum that stays NULL unless every summed value is known: freqtrade-sourced bars carry no quote volume,
    trades or taker volumes (NULL in raw), and a bucket must not pass off a partial sum (or 0) as the total. -#}
{% macro fks_known_sum(value) -%}
    case when count({{ value }}) = count(*) then sum({{ value }}) end
{%- endmacro %}

{#- The columns of an OHLCV rollup of `time_column`-stamped bars into `width` buckets (grouped by 1, 2, 3):
    open = first by time, high = max, low = min, close = last by time, sums of volumes and trades (NULL when any
    summed bar lacks the value), the number of source bars and the interval they are (`bar_source`). -#}
{% macro fks_ohlcv_rollup(width, time_column, bar_count, bar_source) -%}
    market,
    symbol,
    {{ fks_bucket(width, time_column) }} as bucket,
    {{ fks_first('open', time_column) }} as open,
    max(high) as high,
    min(low) as low,
    {{ fks_last('close', time_column) }} as close,
    {{ fks_known_sum('volume') }} as volume,
    {{ fks_known_sum('quote_volume') }} as quote_volume,
    ({{ fks_known_sum('trades') }})::bigint as trades,
    {{ fks_known_sum('taker_buy_base') }} as taker_buy_base,
    {{ fks_known_sum('taker_buy_quote') }} as taker_buy_quote,
    {{ bar_count }}::int as bar_count,
    ({{ bar_source }})::text as bar_source
{%- endmacro %}

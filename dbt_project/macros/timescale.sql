{#-
  The one place where TimescaleDB and plain PostgreSQL differ. Models call these macros and never branch
  themselves; both paths must give identical results (the tests compare them).
-#}

{% macro fks_has_timescaledb() -%}
  {%- if not execute -%}{{ return(false) }}{%- endif -%}
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

{#- Post-hook for rollups: as plain tables they need their key and time indexes; continuous aggregates come
    with TimescaleDB's own indexes on the materialized hypertable. -#}
{% macro fks_rollup_indexes(key_columns, time_column) -%}
  {%- if fks_has_timescaledb() -%}
    select 1
  {%- else -%}
    create unique index if not exists "{{ this.identifier }}__key" on {{ this }} ({{ key_columns | join(', ') }});
    create index if not exists "{{ this.identifier }}__{{ time_column }}_idx" on {{ this }} ({{ time_column }})
  {%- endif -%}
{%- endmacro %}

{#- The columns of an OHLCV rollup of `time_column`-stamped bars into `width` buckets (grouped by 1, 2, 3):
    open = first by time, high = max, low = min, close = last by time, sums of volumes and trades. -#}
{% macro fks_ohlcv_rollup(width, time_column, bar_count) -%}
    market,
    symbol,
    {{ fks_bucket(width, time_column) }} as bucket,
    {{ fks_first('open', time_column) }} as open,
    max(high) as high,
    min(low) as low,
    {{ fks_last('close', time_column) }} as close,
    sum(volume) as volume,
    sum(quote_volume) as quote_volume,
    sum(trades)::bigint as trades,
    sum(taker_buy_base) as taker_buy_base,
    sum(taker_buy_quote) as taker_buy_quote,
    {{ bar_count }}::int as bar_count
{%- endmacro %}

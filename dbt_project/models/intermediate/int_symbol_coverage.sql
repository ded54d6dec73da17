-- What 1-minute history each (market, symbol) holds, per UTC day: the basis of dim_symbols.
-- Incremental, so the daily cost does not grow with history: a run re-aggregates only the (market, symbol,
-- day)s that hold a bar loaded since the previous build (loaded_at after the newest loaded_through here, less
-- the var fks_coverage_lag for loads whose transaction began before and committed after that build), reading
-- each such day through the primary key; a re-load of a day rewrites all of its bars, so its row is rebuilt
-- from what the day holds now. The first run and --full-refresh aggregate everything; both give the same rows.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['market', 'symbol', 'day'],
        on_schema_change='fail',
        post_hook=[
            'create unique index if not exists "{{ this.identifier }}__key" on {{ this }} (market, symbol, day)',
            'create index if not exists "{{ this.identifier }}__loaded_through_idx" on {{ this }} (loaded_through)',
        ],
    )
}}

with
{%- if fks_is_incremental() %}
loaded as materialized (
    -- Materialized, so the planner scans raw once in storage order for the filter (loaded_at has no index)
    -- instead of walking the primary key to feed the distinct below in its order.
    select market, symbol, open_time
    from {{ ref('stg_binance_klines') }}
    where interval = '1m'
      and loaded_at > (select coalesce(max(loaded_through), '-infinity') from {{ this }})
                      - interval '{{ var("fks_coverage_lag", "10 minutes") }}'
),
changed as (
    select distinct market, symbol, date_trunc('day', open_time at time zone 'UTC') as day_start
    from loaded
),
bars as (
    -- One primary-key range scan per changed day: the lateral subquery with `offset 0` is not flattened, so the
    -- planner cannot swap it for a join over all of raw (it cannot know how few days changed).
    select s.market, s.symbol, s.open_time, s.loaded_at
    from changed c
    cross join lateral (
        select market, symbol, open_time, loaded_at
        from {{ ref('stg_binance_klines') }}
        where market = c.market
          and symbol = c.symbol
          and interval = '1m'
          and open_time >= c.day_start at time zone 'UTC'
          and open_time < (c.day_start + interval '1 day') at time zone 'UTC'
        offset 0
    ) s
)
{%- else %}
bars as (
    select market, symbol, open_time, loaded_at
    from {{ ref('stg_binance_klines') }}
    where interval = '1m'
)
{%- endif %}
select
    market,
    symbol,
    (open_time at time zone 'UTC')::date as day,
    min(open_time) as first_bar,
    max(open_time) as last_bar,
    count(*) as minute_bars,
    max(loaded_at) as loaded_through
from bars
group by market, symbol, (open_time at time zone 'UTC')::date

-- What history each (market, symbol) holds, per UTC day: the basis of dim_symbols. A day is described by its
-- finest bars (1m, else 1h, else 1d: the interval the marts build that day from, bar_source), with the count of
-- those bars and, apart, of its 1-minute bars (0 for a day held only as hourly or daily bars).
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
        where interval in ('1m', '1h', '1d')
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
        select s.market, s.symbol, s.interval, s.open_time, s.loaded_at
        from changed c
        cross join lateral (
            select market, symbol, interval, open_time, loaded_at
            from {{ ref('stg_binance_klines') }}
            where market = c.market
              and symbol = c.symbol
              and interval in ('1m', '1h', '1d')
              and open_time >= c.day_start at time zone 'UTC'
              and open_time < (c.day_start + interval '1 day') at time zone 'UTC'
            offset 0
        ) s
    )
{%- else %}
    bars as (
        select
            market,
            symbol,
            interval,
            open_time,
            loaded_at
        from {{ ref('stg_binance_klines') }}
        where interval in ('1m', '1h', '1d')
    )
{%- endif %},

per_interval as (
    select
        market,
        symbol,
        (open_time at time zone 'UTC')::date as day,
        interval,
        case interval when '1m' then 1 when '1h' then 2 else 3 end as fineness,
        min(open_time) as first_bar,
        max(open_time) as last_bar,
        count(*) as bars,
        max(loaded_at) as loaded_through
    from bars
    group by market, symbol, (open_time at time zone 'UTC')::date, interval
)

select
    market,
    symbol,
    day,
    (array_agg(interval order by fineness))[1] as bar_source,
    (array_agg(first_bar order by fineness))[1] as first_bar,
    (array_agg(last_bar order by fineness))[1] as last_bar,
    (array_agg(bars order by fineness))[1] as bars,
    coalesce(sum(bars) filter (where interval = '1m'), 0)::bigint as minute_bars,
    max(loaded_through) as loaded_through
from per_interval
group by market, symbol, day

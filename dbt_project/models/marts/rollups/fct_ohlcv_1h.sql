-- Hourly bars from the finest bars held, decided per (market, symbol, UTC day): a day holding any 1-minute bar is
-- rolled up from its 1-minute bars only (bar_source '1m', bar_count = minutes in the hour); a day without them
-- takes its native 1h bars as they are (bar_source '1h', bar_count 1). So a day is never built from two sources
-- (no duplicate hours), and a range of mixed days is stitched day by day. Reads raw directly (docs/architecture.md);
-- raw's key already means one row per bar. The input window is whole UTC days, so each day is decided whole.
with from_minutes as (
    select
        {{ fks_ohlcv_rollup('1 hour', 'open_time', 'count(*)', "'1m'") }}
    from {{ source('raw', 'binance_klines') }}
    where interval = '1m' {{ fks_input_window('open_time') }}
    group by 1, 2, 3
),

minute_days as (
    select distinct
        market,
        symbol,
        {{ fks_bucket('1 day', 'bucket') }} as day
    from from_minutes
),

from_hours as (
    select
        {{ fks_ohlcv_rollup('1 hour', 'open_time', 'count(*)', "'1h'") }}
    from {{ source('raw', 'binance_klines') }}
    where interval = '1h' {{ fks_input_window('open_time') }}
    group by 1, 2, 3
)

select * from from_minutes
union all
select h.*
from from_hours as h
where not exists (
    select 1 from minute_days as m
    where m.market = h.market and m.symbol = h.symbol and m.day = {{ fks_bucket('1 day', 'h.bucket') }}
)

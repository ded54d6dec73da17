-- Daily bars, per (market, symbol, UTC day): rolled up from the hourly mart when the day has hourly bars
-- (hierarchical: 1m -> 1h -> 1d gives the same numbers as 1m -> 1d; bar_source is the hourly bars' own, '1m' or
-- '1h', one value per day by the hourly mart's per-day rule; bar_count sums theirs), otherwise the native 1d bar
-- as it is (bar_source '1d', bar_count 1).
with from_hours as (
    select
        {{ fks_ohlcv_rollup('1 day', 'bucket', 'sum(bar_count)', 'min(bar_source)') }}
    from {{ ref('fct_ohlcv_1h') }}
    where true {{ fks_input_window('bucket') }}
    group by 1, 2, 3
),

from_days as (
    select
        {{ fks_ohlcv_rollup('1 day', 'open_time', 'count(*)', "'1d'") }}
    from {{ source('raw', 'binance_klines') }}
    where interval = '1d' {{ fks_input_window('open_time') }}
    group by 1, 2, 3
)

select * from from_hours
union all
select d.*
from from_days as d
where not exists (
    select 1 from from_hours as h
    where h.market = d.market and h.symbol = d.symbol and h.bucket = d.bucket
)

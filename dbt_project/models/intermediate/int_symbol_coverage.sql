-- What history each (market, symbol) has at 1-minute resolution: the basis of dim_symbols.
{{ config(materialized='view') }}

select
    market,
    symbol,
    min(open_time) as first_bar,
    max(open_time) as last_bar,
    count(*) as minute_bars,
    count(distinct open_time::date) as days_with_data
from {{ ref('stg_binance_klines') }}
where interval = '1m'
group by market, symbol

-- One row per bar, typed and named for analysts. raw's primary key already makes bars unique; the
-- DISTINCT ON keeps that true (latest load wins) even for a raw table without the key (external loaders).
{{ config(materialized='view') }}

select distinct on (market, symbol, interval, open_time)
    market,
    symbol,
    interval,
    open_time,
    close_time,
    open::numeric as open,
    high::numeric as high,
    low::numeric as low,
    close::numeric as close,
    volume::numeric as volume,
    quote_volume::numeric as quote_volume,
    trades::bigint as trades,
    taker_buy_base::numeric as taker_buy_base,
    taker_buy_quote::numeric as taker_buy_quote,
    source,
    loaded_at
from {{ source('raw', 'binance_klines') }}
order by market, symbol, interval, open_time, loaded_at desc

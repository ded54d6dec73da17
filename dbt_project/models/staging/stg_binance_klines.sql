-- One row per bar, typed and named for analysts. raw's primary key already makes bars unique; the
-- latest-load filter keeps that true (latest load wins) even for a raw table without the key (external loaders).
-- It is a correlated subquery (one primary-key lookup per row that passes the other filters) rather than a
-- DISTINCT ON or an anti-join, so that any filter on the view (loaded_at for int_symbol_coverage's incremental
-- runs, open_time for the scoped unique test) is applied to raw's scan first: a DISTINCT ON view only passes
-- filters on its DISTINCT ON keys down and sorts everything else, and an anti-join may hash all of raw.
{{ config(materialized='view') }}

select
    r.market,
    r.symbol,
    r.interval,
    r.open_time,
    r.close_time,
    r.open::numeric as open,
    r.high::numeric as high,
    r.low::numeric as low,
    r.close::numeric as close,
    r.volume::numeric as volume,
    r.quote_volume::numeric as quote_volume,
    r.trades::bigint as trades,
    r.taker_buy_base::numeric as taker_buy_base,
    r.taker_buy_quote::numeric as taker_buy_quote,
    r.source,
    r.loaded_at
from {{ source('raw', 'binance_klines') }} as r
where r.loaded_at = (
    select max(latest.loaded_at)
    from {{ source('raw', 'binance_klines') }} as latest
    where
        latest.market = r.market
        and latest.symbol = r.symbol
        and latest.interval = r.interval
        and latest.open_time = r.open_time
)

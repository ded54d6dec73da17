-- One row per (market, symbol) the platform holds, with its assets and the history available.
{{ config(materialized='table') }}

with quotes (quote_asset) as (
    values ('USDT'), ('USDC'), ('FDUSD'), ('BUSD'), ('TUSD'), ('USD'), ('EUR'), ('TRY'), ('BTC'), ('ETH'), ('BNB')
),

coverage as (
    -- Per-day coverage summed per symbol: one row per (symbol, day) held, at most 1/24 of the bars.
    select
        market,
        symbol,
        min(first_bar) as first_bar,
        max(last_bar) as last_bar,
        sum(minute_bars)::bigint as minute_bars,
        count(*) as days_with_data,
        count(*) filter (where bar_source = '1m') as days_from_1m,
        count(*) filter (where bar_source = '1h') as days_from_1h,
        count(*) filter (where bar_source = '1d') as days_from_1d
    from {{ ref('int_symbol_coverage') }}
    group by market, symbol
),

parsed as (
    select
        c.*,
        regexp_replace(c.symbol, '_PERP$|_\d{6}$', '') as pair
    from coverage as c
)

select
    p.market,
    p.symbol,
    coalesce(left(p.pair, length(p.pair) - length(q.quote_asset)), p.pair) as base_asset,
    q.quote_asset,
    case p.market
        when 'spot' then 'spot' when 'usdm' then 'USD-M perpetual/futures' else 'COIN-M perpetual/futures'
    end as market_kind,
    p.first_bar,
    p.last_bar,
    p.minute_bars,
    p.days_with_data,
    p.days_from_1m,
    p.days_from_1h,
    p.days_from_1d
from parsed as p
left join lateral (
    select quotes.quote_asset from quotes
    where p.pair like '%' || quotes.quote_asset
    order by length(quotes.quote_asset) desc limit 1
) as q on true

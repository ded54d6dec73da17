-- One row per (market, symbol) the platform holds, with its assets and the history available.
{{ config(materialized='table') }}

with quotes(quote_asset) as (
    values ('USDT'), ('USDC'), ('FDUSD'), ('BUSD'), ('TUSD'), ('USD'), ('EUR'), ('TRY'), ('BTC'), ('ETH'), ('BNB')
), parsed as (
    select
        c.*,
        regexp_replace(c.symbol, '_PERP$|_\d{6}$', '') as pair
    from {{ ref('int_symbol_coverage') }} c
)
select
    p.market,
    p.symbol,
    coalesce(left(p.pair, length(p.pair) - length(q.quote_asset)), p.pair) as base_asset,
    q.quote_asset,
    case p.market when 'spot' then 'spot' when 'usdm' then 'USD-M perpetual/futures' else 'COIN-M perpetual/futures' end as market_kind,
    p.first_bar,
    p.last_bar,
    p.minute_bars,
    p.days_with_data
from parsed p
left join lateral (
    select quote_asset from quotes where p.pair like '%' || quote_asset order by length(quote_asset) desc limit 1
) q on true

-- Daily bars rolled up from the hourly ones (hierarchical: 1m -> 1h -> 1d gives the same numbers as 1m -> 1d).
{{ config(
    materialized='fks_rollup',
    incremental_strategy='window_replace',
    event_time='bucket',
    unique_key=['market', 'symbol', 'bucket'],
    on_schema_change='fail',
    tags=['partitioned'],
    post_hook=["{{ fks_rollup_indexes(['market', 'symbol', 'bucket'], 'bucket') }}"],
) }}

select
    market,
    symbol,
    {{ fks_bucket('1 day', 'bucket') }} as bucket,
    {{ fks_first('open', 'bucket') }} as open,
    max(high) as high,
    min(low) as low,
    {{ fks_last('close', 'bucket') }} as close,
    sum(volume) as volume,
    sum(quote_volume) as quote_volume,
    sum(trades)::bigint as trades,
    sum(taker_buy_base) as taker_buy_base,
    sum(taker_buy_quote) as taker_buy_quote,
    sum(bar_count)::int as bar_count
from {{ ref('fct_ohlcv_1h') }}
where true
    {{ fks_input_window('bucket') }}
group by 1, 2, 3

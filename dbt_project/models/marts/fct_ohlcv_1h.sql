-- Hourly bars rolled up from 1-minute bars. Reads the raw table directly (not staging) so that, with
-- TimescaleDB, the same definition can be maintained on the hypertable; raw's key already means one row per bar.
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
    {{ fks_bucket('1 hour', 'open_time') }} as bucket,
    {{ fks_first('open', 'open_time') }} as open,
    max(high) as high,
    min(low) as low,
    {{ fks_last('close', 'open_time') }} as close,
    sum(volume) as volume,
    sum(quote_volume) as quote_volume,
    sum(trades)::bigint as trades,
    sum(taker_buy_base) as taker_buy_base,
    sum(taker_buy_quote) as taker_buy_quote,
    count(*)::int as bar_count
from {{ source('raw', 'binance_klines') }}
where interval = '1m'
    {{ fks_input_window('open_time') }}
group by 1, 2, 3

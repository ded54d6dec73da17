-- Daily log returns and rolling volatility per symbol, from daily closes. A return is only defined when the
-- previous day exists; volatility windows are calendar windows (RANGE), so a missing day never stretches them.
{{ config(
    materialized='incremental',
    incremental_strategy='window_replace',
    event_time='bucket',
    unique_key=['market', 'symbol', 'bucket'],
    on_schema_change='fail',
    tags=['partitioned'],
    post_hook=[
        "{{ fks_time_series('bucket') }}",
        "create unique index if not exists fct_returns__key on {{ this }} (market, symbol, bucket)",
    ],
) }}

with daily as (
    select
        market,
        symbol,
        bucket,
        close,
        bar_count
    from {{ ref('fct_ohlcv_1d') }}
    where true {{ fks_input_window('bucket', lookback='31 days') }}
),

with_returns as (
    select
        market,
        symbol,
        bucket,
        close,
        bar_count,
        case
            when lag(bucket) over w = bucket - interval '1 day'
                then ln(close / lag(close) over w)
        end as log_return
    from daily
    window w as (partition by market, symbol order by bucket)
),

with_volatility as (
    select
        market,
        symbol,
        bucket,
        close,
        log_return::double precision as log_return,
        (exp(log_return) - 1)::double precision as simple_return,
        (stddev_samp(log_return) over w7 * sqrt(365))::double precision as volatility_7d,
        (stddev_samp(log_return) over w30 * sqrt(365))::double precision as volatility_30d,
        (count(log_return) over w30)::int as returns_in_30d
    from with_returns
    window
        w7 as (partition by market, symbol order by bucket range between interval '6 days' preceding and current row),
        w30 as (partition by market, symbol order by bucket range between interval '29 days' preceding and current row)
)

-- The window filter applies after the rolling windows are computed over the lookback.
select *
from with_volatility
where true {{ fks_output_window('bucket') }}

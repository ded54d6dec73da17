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
    {{ fks_ohlcv_rollup('1 day', 'bucket', 'sum(bar_count)') }}
from {{ ref('fct_ohlcv_1h') }}
where true
    {{ fks_input_window('bucket') }}
group by 1, 2, 3

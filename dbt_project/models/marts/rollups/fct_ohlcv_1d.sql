-- Daily bars rolled up from the hourly ones (hierarchical: 1m -> 1h -> 1d gives the same numbers as 1m -> 1d).
select
    {{ fks_ohlcv_rollup('1 day', 'bucket', 'sum(bar_count)') }}
from {{ ref('fct_ohlcv_1h') }}
where true
    {{ fks_input_window('bucket') }}
group by 1, 2, 3

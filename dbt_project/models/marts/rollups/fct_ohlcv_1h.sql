-- Hourly bars rolled up from 1-minute bars. Reads the raw table directly (not staging) so that, with
-- TimescaleDB, the same definition is maintained on the hypertable; raw's key already means one row per bar.
select
    {{ fks_ohlcv_rollup('1 hour', 'open_time', 'count(*)') }}
from {{ source('raw', 'binance_klines') }}
where interval = '1m'
    {{ fks_input_window('open_time') }}
group by 1, 2, 3

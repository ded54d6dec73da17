-- Incremental dbt runs read one day of raw bars across all symbols: an index on open_time keeps that cost
-- independent of how much history the table holds (the primary key leads with market and symbol).
CREATE INDEX IF NOT EXISTS binance_klines_open_time_idx ON raw.binance_klines (open_time, interval);

-- The raw layer: Binance klines exactly as landed, and a log of every load.
-- Column names of raw.binance_klines are a contract with analysts and dbt: change them only with a migration.

CREATE SCHEMA IF NOT EXISTS raw;
COMMENT ON SCHEMA raw IS 'Exchange market data as landed by fks_pipelines (one row per bar, idempotent per partition).';

CREATE TABLE IF NOT EXISTS raw.binance_klines (
    market text NOT NULL CHECK (market IN ('spot', 'usdm', 'coinm')),
    symbol text NOT NULL,
    interval text NOT NULL,
    open_time timestamptz NOT NULL,
    close_time timestamptz NOT NULL,
    open numeric NOT NULL,
    high numeric NOT NULL,
    low numeric NOT NULL,
    close numeric NOT NULL,
    volume numeric NOT NULL,
    quote_volume numeric NOT NULL,
    trades bigint NOT NULL,
    taker_buy_base numeric NOT NULL,
    taker_buy_quote numeric NOT NULL,
    source text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (market, symbol, interval, open_time)
);

COMMENT ON TABLE raw.binance_klines IS 'Binance klines (candlesticks) as landed. Natural key (market, symbol, interval, open_time). Times are UTC.';
COMMENT ON COLUMN raw.binance_klines.market IS 'spot, usdm (USD-M futures) or coinm (COIN-M futures).';
COMMENT ON COLUMN raw.binance_klines.symbol IS 'Binance symbol, e.g. BTCUSDT.';
COMMENT ON COLUMN raw.binance_klines.interval IS 'Bar length in Binance''s spelling: 1m, 1h, 1d ...';
COMMENT ON COLUMN raw.binance_klines.open_time IS 'Start of the bar (inclusive).';
COMMENT ON COLUMN raw.binance_klines.close_time IS 'End of the bar: open_time + interval - 1 ms (Binance''s convention).';
COMMENT ON COLUMN raw.binance_klines.open IS 'First trade price in the bar (quote currency).';
COMMENT ON COLUMN raw.binance_klines.high IS 'Highest trade price in the bar.';
COMMENT ON COLUMN raw.binance_klines.low IS 'Lowest trade price in the bar.';
COMMENT ON COLUMN raw.binance_klines.close IS 'Last trade price in the bar.';
COMMENT ON COLUMN raw.binance_klines.volume IS 'Traded volume in the base asset (contracts for COIN-M).';
COMMENT ON COLUMN raw.binance_klines.quote_volume IS 'Traded volume in the quote asset (base coin for COIN-M).';
COMMENT ON COLUMN raw.binance_klines.trades IS 'Number of trades in the bar.';
COMMENT ON COLUMN raw.binance_klines.taker_buy_base IS 'Volume bought by takers, base asset.';
COMMENT ON COLUMN raw.binance_klines.taker_buy_quote IS 'Volume bought by takers, quote asset.';
COMMENT ON COLUMN raw.binance_klines.source IS 'Where the row came from: sample, binance_rest, binance_archive, file.';
COMMENT ON COLUMN raw.binance_klines.loaded_at IS 'When the load that wrote this row committed (transaction time).';

CREATE TABLE IF NOT EXISTS raw.ingest_log (
    id bigserial PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('loaded', 'rejected', 'failed')),
    partition_key text,
    market text NOT NULL,
    interval text NOT NULL,
    symbols text[] NOT NULL,
    range_start timestamptz NOT NULL,
    range_end timestamptz NOT NULL,
    source text NOT NULL,
    detail text,
    rows_deleted bigint,
    rows_loaded bigint,
    checksum text,
    duration_ms double precision,
    error text,
    run_id text,
    logged_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ingest_log_range_idx ON raw.ingest_log (market, interval, range_start);
COMMENT ON TABLE raw.ingest_log IS 'One row per load attempt into raw.binance_klines: what, from where, how many rows, how long, and the error if it was rejected.';

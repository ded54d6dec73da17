-- Some sources publish only open, high, low, close and volume (freqtrade's data files keep six columns): the
-- quote volume, the trade count and the taker volumes of their bars are unknown, and stored as NULL rather than
-- invented. Every other column stays NOT NULL; the loader (frame.validate_klines) allows NULL in these four only.
ALTER TABLE raw.binance_klines ALTER COLUMN quote_volume DROP NOT NULL;
ALTER TABLE raw.binance_klines ALTER COLUMN trades DROP NOT NULL;
ALTER TABLE raw.binance_klines ALTER COLUMN taker_buy_base DROP NOT NULL;
ALTER TABLE raw.binance_klines ALTER COLUMN taker_buy_quote DROP NOT NULL;

COMMENT ON COLUMN raw.binance_klines.quote_volume IS
'Traded volume in the quote asset (base coin for COIN-M). NULL: the source does not publish it (e.g. freqtrade files).';
COMMENT ON COLUMN raw.binance_klines.trades IS
'Number of trades in the bar. NULL: the source does not publish it (e.g. freqtrade files).';
COMMENT ON COLUMN raw.binance_klines.taker_buy_base IS
'Volume bought by takers, base asset. NULL: the source does not publish it (e.g. freqtrade files).';
COMMENT ON COLUMN raw.binance_klines.taker_buy_quote IS
'Volume bought by takers, quote asset. NULL: the source does not publish it (e.g. freqtrade files).';
COMMENT ON COLUMN raw.binance_klines.source IS
'Where the row came from: sample, binance_rest, binance_archive, file, freqtrade.';

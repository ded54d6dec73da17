-- Rolling, nested strategy choice (issue 13): several decisions per run and symbol, each with its windows, its
-- Deflated Sharpe Ratio, the PBO of the selection and its test-window record; 'cash' is a choice (params {}).
ALTER TABLE analytics.strategy_choices
ADD COLUMN IF NOT EXISTS candidate text,                      -- the best strategy on the validation window
ADD COLUMN IF NOT EXISTS in_sample_start timestamptz,         -- parameters chosen on [in_sample_start, validation_start)
ADD COLUMN IF NOT EXISTS validation_start timestamptz,        -- strategy (or cash) chosen on [validation_start, decided_at)
ADD COLUMN IF NOT EXISTS n_trials int,                        -- strategies compared on the validation window
ADD COLUMN IF NOT EXISTS dsr double precision,                -- Deflated Sharpe Ratio of the candidate's validation record
ADD COLUMN IF NOT EXISTS pbo double precision,                -- PBO (CSCV) of best-Sharpe selection over the configurations
ADD COLUMN IF NOT EXISTS configurations int,                  -- configurations in that selection
ADD COLUMN IF NOT EXISTS test_end timestamptz,                -- test window [decided_at, test_end): known only at test_end
ADD COLUMN IF NOT EXISTS test_total_return double precision,  -- NULL while the test window is not complete
ADD COLUMN IF NOT EXISTS test_sharpe double precision,
ADD COLUMN IF NOT EXISTS test_max_drawdown double precision,
ADD COLUMN IF NOT EXISTS test_trades double precision,
ADD COLUMN IF NOT EXISTS test_buy_and_hold_return double precision;

ALTER TABLE analytics.strategy_choices DROP CONSTRAINT IF EXISTS strategy_choices_pkey;
ALTER TABLE analytics.strategy_choices ADD PRIMARY KEY (run_id, market, symbol, decided_at);
CREATE INDEX IF NOT EXISTS strategy_choices_point_in_time ON analytics.strategy_choices (market, symbol, decided_at);

COMMENT ON COLUMN analytics.strategy_choices.params IS 'The in-sample parameters of the chosen strategy; {} for cash';
COMMENT ON COLUMN analytics.strategy_choices.oos_total_return IS 'The candidate''s validation-window return (known at decided_at)';
COMMENT ON COLUMN analytics.strategy_choices.decided_at IS 'The decision time: every input of the choice is before it';

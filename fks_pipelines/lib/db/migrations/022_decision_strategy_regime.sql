-- Issue 24, section 3: a record that feeds back. Each recommendation keeps what it was about: the strategy the
-- decision followed and the symbol's regime at the decision, so what happened after it can be read per
-- (strategy, regime) by the next decisions (lib/recommend/feedback.py) and by analysts.
ALTER TABLE recommendations.daily ADD COLUMN IF NOT EXISTS strategy text;   -- null: no strategy chosen (cash)
ALTER TABLE recommendations.daily ADD COLUMN IF NOT EXISTS regime text;     -- null: no regime known that day
COMMENT ON COLUMN recommendations.daily.strategy IS
'The strategy the decision followed (its state, else the latest walk-forward choice); null: none, cash.';
COMMENT ON COLUMN recommendations.daily.regime IS 'The symbol''s regime on the decision day (analytics.market_regimes).';

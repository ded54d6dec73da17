-- Issue 24: protections that act on the account. Each account may override its capital tier's protections and,
-- for a prop firm, carry the firm's rules (fks portfolio import; lib/portfolio/guards.py). Every act of a guard
-- on a day's recommendation is one row of recommendations.guards, with its reason.
ALTER TABLE portfolio.accounts ADD COLUMN IF NOT EXISTS protections jsonb;   -- overrides of the tier defaults
ALTER TABLE portfolio.accounts ADD COLUMN IF NOT EXISTS prop_firm jsonb;     -- daily_loss_limit, max_drawdown, ...

CREATE TABLE IF NOT EXISTS recommendations.guards (
    decision_date date NOT NULL,
    account text NOT NULL,
    guard text NOT NULL,   -- max_drawdown | stoploss_guard | cooldown | daily_loss_limit | prop_*
    action text NOT NULL CHECK (action IN ('block_entry', 'cut_exposure', 'cap_size', 'no_size_fits')),
    symbol text NOT NULL DEFAULT '',   -- '' : the whole account
    reason text NOT NULL,
    threshold double precision,
    value double precision,
    until timestamptz,            -- when the act ends (null: while its condition holds)
    PRIMARY KEY (decision_date, account, guard, action, symbol),
    FOREIGN KEY (decision_date, account) REFERENCES recommendations.generations ON DELETE CASCADE
);
COMMENT ON TABLE recommendations.guards IS
'Every act of a protection on a day''s recommendation: which guard, what it did, to which symbol (empty: the '
'account), why, and until when.';
GRANT SELECT ON recommendations.guards TO analyst;

-- The evaluation's 'unprotected' curve: the same recommendations before any protection acted, without stops.
ALTER TABLE recommendations.evaluation DROP CONSTRAINT IF EXISTS evaluation_baseline_check;
ALTER TABLE recommendations.evaluation ADD CONSTRAINT evaluation_baseline_check
CHECK (baseline IN ('recommendations', 'unprotected', 'cash', 'buy_and_hold', 'strategy_only'));

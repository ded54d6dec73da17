-- Issue 13: what the chosen strategy holds at every close (analytics.strategy_state), paper accounts that follow
-- their own recommendations (portfolio.accounts.mode), and the recommendations judged against baselines
-- (recommendations.evaluation).
CREATE TABLE IF NOT EXISTS analytics.strategy_state (
    bucket timestamptz NOT NULL,   -- the UTC day whose close the state is as of
    market text NOT NULL,
    symbol text NOT NULL,
    as_of timestamptz NOT NULL,   -- the last hourly bar used (point-in-time: nothing after it)
    strategy text NOT NULL,   -- the latest choice decided before the close; 'cash' when none beats cash
    params jsonb NOT NULL,
    choice_decided_at timestamptz,        -- that choice's decided_at (null: textbook defaults, no choice yet)
    position text NOT NULL CHECK (position IN ('flat', 'long', 'short')),
    since timestamptz,            -- the bar whose signal opened the position (null when flat)
    entry_price double precision,       -- the close of that bar
    unrealised_pnl double precision,      -- close / entry - 1 (sign flipped for a short); null when flat
    PRIMARY KEY (market, symbol, bucket)
);

ALTER TABLE portfolio.accounts ADD COLUMN IF NOT EXISTS mode text NOT NULL DEFAULT 'real'
CHECK (mode IN ('real', 'paper'));
COMMENT ON COLUMN portfolio.accounts.mode IS
'real: imported trades only; paper: the platform fills its own recommendations at the next open (trade ids paper-*)';

CREATE TABLE IF NOT EXISTS recommendations.evaluation (
    account text NOT NULL,
    generator text NOT NULL,   -- llm | rules | mixed (recommendations); the same for its baselines
    baseline text NOT NULL CHECK (baseline IN ('recommendations', 'cash', 'buy_and_hold', 'strategy_only')),
    start_date date NOT NULL,   -- first decision day
    end_date date NOT NULL,   -- last day whose close is counted
    total_return double precision NOT NULL,
    cagr double precision,
    sharpe double precision,       -- daily returns, annualised with sqrt(365)
    sortino double precision,
    max_drawdown double precision NOT NULL,
    turnover double precision NOT NULL,   -- traded notional / mean equity
    fees double precision NOT NULL,   -- quote currency (fees and slippage)
    hit_rate double precision,       -- share of days in the market that gained
    n_decisions int NOT NULL,   -- days with a decision (or a trade, for the baselines)
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, generator, baseline, start_date, end_date)
);

GRANT SELECT ON analytics.strategy_state, recommendations.evaluation TO analyst;

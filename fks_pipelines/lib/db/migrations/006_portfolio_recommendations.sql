-- The portfolio ledger (accounts, deposits, trades; positions and cash are views over them), the daily
-- recommendations with their audit trail, their track record, and the monthly profit split.
CREATE SCHEMA IF NOT EXISTS portfolio;
COMMENT ON SCHEMA portfolio IS 'Accounts, deposits and trades (imported with `fks portfolio import`); positions and cash derived.';

CREATE TABLE IF NOT EXISTS portfolio.accounts (
    account text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('personal', 'prop_firm', 'long_term')),
    market text NOT NULL DEFAULT 'spot',
    quote text NOT NULL DEFAULT 'USDT',
    imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS portfolio.deposits (
    account text NOT NULL REFERENCES portfolio.accounts ON DELETE CASCADE,
    at timestamptz NOT NULL,
    amount numeric(38, 8) NOT NULL,   -- negative: a withdrawal (or a profit-split transfer out)
    note text
);
CREATE INDEX IF NOT EXISTS deposits_account_at ON portfolio.deposits (account, at);

CREATE TABLE IF NOT EXISTS portfolio.trades (
    trade_id text NOT NULL,
    account text NOT NULL REFERENCES portfolio.accounts ON DELETE CASCADE,
    symbol text NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity numeric(38, 8) NOT NULL CHECK (quantity > 0),
    price numeric(38, 8) NOT NULL CHECK (price > 0),
    fee numeric(38, 8) NOT NULL DEFAULT 0 CHECK (fee >= 0),  -- in the quote currency
    executed_at timestamptz NOT NULL,
    PRIMARY KEY (account, trade_id)
);
CREATE INDEX IF NOT EXISTS trades_account_at ON portfolio.trades (account, executed_at);

CREATE SCHEMA IF NOT EXISTS recommendations;
COMMENT ON SCHEMA recommendations IS 'Daily recommendations per account and symbol, how each was generated, and their track record.';

CREATE TABLE IF NOT EXISTS recommendations.generations (
    decision_date date NOT NULL,
    account text NOT NULL,
    generator text NOT NULL,   -- llm | rules (rules also when the LLM failed: see llm_error)
    model text,
    decided_at timestamptz NOT NULL,   -- the point in time the inputs are as of
    prompt jsonb NOT NULL,   -- the messages sent (or that would have been sent)
    raw_response text,
    llm_error text,
    latency_ms double precision,
    prompt_tokens int,
    completion_tokens int,
    attempts int NOT NULL DEFAULT 0,
    retrieved_ids jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (decision_date, account)
);

CREATE TABLE IF NOT EXISTS recommendations.daily (
    decision_date date NOT NULL,
    account text NOT NULL,
    symbol text NOT NULL,
    generator text NOT NULL,
    action text NOT NULL CHECK (action IN ('buy', 'sell', 'hold')),
    target_allocation double precision NOT NULL,   -- after sizing: what to hold, as a share of equity
    proposed_allocation double precision,          -- what the generator asked for
    current_allocation double precision NOT NULL,
    entry double precision,
    stop_loss double precision,
    take_profit double precision,
    horizon_days int NOT NULL,
    confidence double precision NOT NULL,
    rationale text NOT NULL,
    evidence jsonb NOT NULL DEFAULT '[]',  -- knowledge.documents ids the rationale relies on
    clamps jsonb NOT NULL DEFAULT '[]',  -- each sizing rule that changed the proposal
    reference_price double precision NOT NULL,         -- the close at decision time
    PRIMARY KEY (decision_date, account, symbol),
    FOREIGN KEY (decision_date, account) REFERENCES recommendations.generations ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS recommendations.track_record (
    decision_date date NOT NULL,
    account text NOT NULL,
    symbol text NOT NULL,
    generator text NOT NULL,
    action text NOT NULL,
    target_allocation double precision NOT NULL,
    return_1d double precision,   -- the symbol's close-to-close return after the decision
    return_7d double precision,
    hit_1d boolean,            -- buy and it rose, sell and it fell, hold and it moved < 1 sigma
    hit_7d boolean,
    paper_pnl_1d double precision,   -- target allocation x equity x return (quote currency)
    paper_pnl_7d double precision,
    scored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (decision_date, account, symbol)
);

CREATE TABLE IF NOT EXISTS portfolio.profit_splits (
    month date NOT NULL,   -- first day of the month split
    account text NOT NULL,   -- the trading account whose profit is split
    to_account text,                   -- the long-term account receiving half (null: none exists)
    equity_start double precision NOT NULL,
    equity_end double precision NOT NULL,
    net_deposits double precision NOT NULL,
    profit double precision NOT NULL,
    transfer double precision NOT NULL,   -- half the profit when positive, else 0
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (month, account)
);

GRANT USAGE ON SCHEMA portfolio, recommendations TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA portfolio, recommendations TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA portfolio GRANT SELECT ON TABLES TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA recommendations GRANT SELECT ON TABLES TO analyst;

-- Issue 13: when an LLM is configured, the rules engine also decides every paper account-day from the same
-- point-in-time market inputs and documents, seeing its own shadow ledger's state (a shadow generation: what the
-- account would hold had it followed the rules). The account itself follows only the LLM's rows in
-- recommendations.daily; these tables let recommendations.evaluation replay a ledger per generator.
CREATE TABLE IF NOT EXISTS recommendations.shadow_daily (
    decision_date date NOT NULL,
    account text NOT NULL,
    generator text NOT NULL,   -- the generator not followed (rules)
    symbol text NOT NULL,
    decided_at timestamptz NOT NULL,   -- the same decision time as the followed generation
    action text NOT NULL CHECK (action IN ('buy', 'sell', 'hold')),
    target_allocation double precision NOT NULL,   -- after the same sizing as recommendations.daily
    current_allocation double precision NOT NULL,  -- in the shadow ledger, at the decision time
    confidence double precision NOT NULL,
    rationale text NOT NULL,
    reference_price double precision NOT NULL,
    PRIMARY KEY (decision_date, account, generator, symbol)
);

-- The shadow ledger's fills: the paper rules (next open, fees, slippage) applied to recommendations.shadow_daily.
CREATE TABLE IF NOT EXISTS recommendations.shadow_fills (
    account text NOT NULL,
    generator text NOT NULL,
    trade_id text NOT NULL,   -- paper-<decision day>-<symbol>, as the followed ledger's
    symbol text NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity numeric(38, 8) NOT NULL CHECK (quantity > 0),
    price numeric(38, 8) NOT NULL CHECK (price > 0),
    fee numeric(38, 8) NOT NULL CHECK (fee >= 0),
    executed_at timestamptz NOT NULL,
    PRIMARY KEY (account, generator, trade_id)
);

-- The shadow recommendations are readable like recommendations.daily; the shadow fills are an account's ledger
-- (quantities reveal its size), closed like portfolio.trades.
GRANT SELECT ON recommendations.shadow_daily TO analyst;
REVOKE ALL ON recommendations.shadow_fills FROM analyst;

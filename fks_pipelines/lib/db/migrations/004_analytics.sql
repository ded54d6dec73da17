-- Results of the quantitative layer, for analysts: signals, backtest sweeps, walk-forward choices, regimes.
CREATE SCHEMA IF NOT EXISTS analytics;
COMMENT ON SCHEMA analytics IS 'Signals, backtests, walk-forward validation and market regimes (read-only for analysts).';

CREATE TABLE IF NOT EXISTS analytics.signals (
    bucket timestamptz NOT NULL,   -- the UTC day the state is as of (end of that day)
    market text NOT NULL,
    symbol text NOT NULL,
    as_of timestamptz NOT NULL,   -- the last bar used (point-in-time: nothing after it)
    close double precision,
    rsi_14 double precision,
    macd double precision,
    macd_signal double precision,
    macd_hist double precision,
    bb_lower double precision,
    bb_middle double precision,
    bb_upper double precision,
    sma_20 double precision,
    sma_50 double precision,
    ema_20 double precision,
    atr_14 double precision,
    strategy_signals jsonb NOT NULL,   -- {strategy: {"params": {...}, "entry": bool, "exit": bool}}
    PRIMARY KEY (market, symbol, bucket)
);

CREATE TABLE IF NOT EXISTS analytics.backtest_runs (
    run_id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    code_version text NOT NULL,
    bar_interval text NOT NULL,
    data_start timestamptz NOT NULL,
    data_end timestamptz NOT NULL,
    objective text NOT NULL,
    config jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS analytics.backtest_results (
    run_id text NOT NULL REFERENCES analytics.backtest_runs ON DELETE CASCADE,
    market text NOT NULL,
    symbol text NOT NULL,
    strategy text NOT NULL,
    params jsonb NOT NULL,
    sample text NOT NULL,   -- full | in_sample | out_of_sample
    window_index int,                    -- walk-forward window (null for the full sample)
    data_start timestamptz NOT NULL,
    data_end timestamptz NOT NULL,
    total_return double precision, cagr double precision, sharpe double precision, sortino double precision,
    calmar double precision, max_drawdown double precision, max_drawdown_duration_bars double precision,
    win_rate double precision, profit_factor double precision, expectancy double precision,
    trades double precision, avg_trade_duration_bars double precision, exposure double precision,
    fees_paid double precision, buy_and_hold_return double precision
);
CREATE INDEX IF NOT EXISTS backtest_results_lookup ON analytics.backtest_results (run_id, symbol, strategy, sample);

CREATE TABLE IF NOT EXISTS analytics.strategy_choices (
    run_id text NOT NULL REFERENCES analytics.backtest_runs ON DELETE CASCADE,
    market text NOT NULL,
    symbol text NOT NULL,
    strategy text NOT NULL,
    params jsonb NOT NULL,   -- the last walk-forward window's in-sample choice: what to trade next
    objective text NOT NULL,
    oos_windows int NOT NULL,
    oos_total_return double precision,    -- compounded over all out-of-sample windows
    oos_sharpe double precision,       -- of the chained out-of-sample equity curve
    oos_max_drawdown double precision,
    oos_trades double precision,
    buy_and_hold_return double precision,
    decided_at timestamptz NOT NULL,   -- the last decision time (point-in-time)
    PRIMARY KEY (run_id, market, symbol)
);

CREATE TABLE IF NOT EXISTS analytics.market_regimes (
    market text NOT NULL,
    symbol text NOT NULL,
    bucket timestamptz NOT NULL,
    regime text NOT NULL,
    next_day_probabilities jsonb NOT NULL,
    PRIMARY KEY (market, symbol, bucket)
);

CREATE TABLE IF NOT EXISTS analytics.regime_transitions (
    market text NOT NULL,
    symbol text NOT NULL,
    from_regime text NOT NULL,
    to_probabilities jsonb NOT NULL,
    stationary_share double precision NOT NULL,
    estimated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (market, symbol, from_regime)
);

GRANT USAGE ON SCHEMA analytics TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO analyst;

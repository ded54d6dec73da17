-- Issue 21: weekly strategy choices over the whole history, decided incrementally. A configuration (strategies,
-- grids, windows, fees, objective, min_dsr, search, code version) has one deterministic run id, derived from its
-- fingerprint: a later run with the same configuration adds only decision times not yet decided, and a changed
-- configuration is a new run that re-decides everything. Readers take, per decision time, the choice of the run
-- materialized last (last_run_at), so re-running gives the same tables whatever the order of the runs.
ALTER TABLE analytics.backtest_runs
ADD COLUMN IF NOT EXISTS fingerprint text,        -- sha256 of the configuration (null for runs before issue 21)
ADD COLUMN IF NOT EXISTS last_run_at timestamptz; -- when a run with this configuration last materialized
UPDATE analytics.backtest_runs SET last_run_at = created_at
WHERE last_run_at IS NULL;
ALTER TABLE analytics.backtest_runs ALTER COLUMN last_run_at SET NOT NULL;
ALTER TABLE analytics.backtest_runs ALTER COLUMN last_run_at SET DEFAULT now();

COMMENT ON COLUMN analytics.backtest_runs.fingerprint IS
'sha256 of the decision configuration; the run id is derived from it, so the same configuration is one run';
COMMENT ON COLUMN analytics.backtest_runs.last_run_at IS
'When this configuration last materialized: of several runs deciding the same time, readers take the latest';

-- Issue 22: a re-run of recommendations/daily over [a, b] replays the paper ledgers from a, and removes the
-- paper fills of the days after b that were already decided; those days' recommendations were made from the
-- state the re-run replaced. Until a run whose window starts on or before incomplete_from and reaches the
-- account's last decided day replays them, the account's ledger is incomplete, and recommendations/evaluation
-- refuses to evaluate it (naming the days to re-run) instead of scoring a ledger with holes.
CREATE TABLE IF NOT EXISTS recommendations.ledger_holes (
    account text PRIMARY KEY,
    incomplete_from date NOT NULL,   -- the first decided day whose fills are missing or stale
    removed_fills jsonb NOT NULL DEFAULT '[]',   -- trade ids the re-runs removed and did not replay
    recorded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recommendations.ledger_holes IS
'Paper accounts whose ledger is incomplete from incomplete_from to their last decided day, after a re-run of '
'earlier days; re-run recommendations/daily over those days to fill it (the record is then removed).';

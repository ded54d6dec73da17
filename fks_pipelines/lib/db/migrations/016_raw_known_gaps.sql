-- Bars a source proved do not exist (an exchange outage in a freqtrade file's range, a symbol listed later that
-- day): recorded with the load that relied on the proof, in the same transaction, so checks report them as known
-- gaps (a warning, listed) rather than failures, and the gap sensor does not re-fetch them forever.
CREATE TABLE IF NOT EXISTS raw.known_gaps (
    market text NOT NULL,
    symbol text NOT NULL,
    interval text NOT NULL,
    range_start timestamptz NOT NULL,
    range_end timestamptz NOT NULL CHECK (range_end > range_start),
    evidence text NOT NULL,
    source text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (market, symbol, interval, range_start)
);
COMMENT ON TABLE raw.known_gaps IS 'Ranges [range_start, range_end) where a source proved that no bar exists (e.g. Binance maintenance); replaced with the loads of the days they lie in.';
COMMENT ON COLUMN raw.known_gaps.evidence IS 'Why the bars do not exist, as the source stated it (e.g. the file that has no bar there).';

-- Issue 21: on years of history the evaluation is read per calendar year too. Each account, generator and
-- baseline gets its whole-window row (period 'window') and, when the window spans more than one calendar year,
-- one row per year (period 'YYYY'): the same curve restricted to that year's closes, from the previous year's
-- last close (lib/recommend/evaluation.py by_year).
ALTER TABLE recommendations.evaluation ADD COLUMN IF NOT EXISTS period text NOT NULL DEFAULT 'window'
CHECK (period = 'window' OR period ~ '^[0-9]{4}$');
COMMENT ON COLUMN recommendations.evaluation.period IS
'window: the whole evaluated window; YYYY: that calendar year (UTC) of the same curve';

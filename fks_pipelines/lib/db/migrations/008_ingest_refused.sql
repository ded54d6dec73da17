-- A load that would replace bars already held with fewer ones is refused (not an error in the input, not a
-- database failure): raw.ingest_log records it with its own status and the reason in error.
ALTER TABLE raw.ingest_log DROP CONSTRAINT IF EXISTS ingest_log_status_check;
ALTER TABLE raw.ingest_log
ADD CONSTRAINT ingest_log_status_check CHECK (status IN ('loaded', 'rejected', 'failed', 'refused'));

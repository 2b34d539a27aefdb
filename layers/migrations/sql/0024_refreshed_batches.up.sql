-- Which load batches the refresh of the monthly statistics (etl/refresh.py) has taken: a marker
-- per batch, set in the refresh's own transaction. It replaces reading "every batch above the
-- highest id refreshed" (refresh_state.last_batch_id): ids are handed out when a load begins, not
-- when it commits, so a batch that began before a higher one and committed after a refresh that
-- took that one was never refreshed. refresh_state keeps its row (when the job last ran).
ALTER TABLE pingan.etl_batches ADD COLUMN refreshed_at timestamptz,
    ADD CONSTRAINT etl_batches_refreshed_done CHECK (refreshed_at IS NULL OR status = 'done');

-- What the old reading had covered counts as refreshed: the done batches up to the highest id
UPDATE pingan.etl_batches b SET refreshed_at = s.refreshed_at
FROM pingan.refresh_state s
WHERE s.job = 'monthly_stats' AND b.status = 'done' AND b.id <= s.last_batch_id;

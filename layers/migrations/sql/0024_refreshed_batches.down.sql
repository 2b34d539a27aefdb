-- Back to "every batch above the highest id refreshed": the highest id below which every done
-- batch was refreshed (a batch refreshed out of order above an unrefreshed one is taken again)
UPDATE pingan.refresh_state s SET last_batch_id = coalesce(least(
    (SELECT max(id) FROM pingan.etl_batches WHERE refreshed_at IS NOT NULL),
    (SELECT min(id) - 1 FROM pingan.etl_batches WHERE status = 'done' AND refreshed_at IS NULL)), 0)
WHERE s.job = 'monthly_stats';

ALTER TABLE pingan.etl_batches DROP COLUMN refreshed_at;

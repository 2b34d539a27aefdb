ALTER TABLE pingan.etl_batches DROP COLUMN seconds;

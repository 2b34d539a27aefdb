-- A load batch records its timings: started_at is when the loader began reading the file (it was
-- the transaction's start, after reading and mapping), and `seconds` the stages' seconds as the
-- load's summary prints them (read, map, locate, load, total, and the load's own split).
ALTER TABLE pingan.etl_batches ADD COLUMN seconds jsonb;

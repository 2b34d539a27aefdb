DROP FUNCTION pingan.analysis_events(text, timestamptz, timestamptz, text[], text[], text);
DROP FUNCTION pingan.fail_interrupted_jobs();
DROP VIEW pingan.hotspot_results;
DROP TABLE pingan.job_cells;
DROP TABLE pingan.jobs;

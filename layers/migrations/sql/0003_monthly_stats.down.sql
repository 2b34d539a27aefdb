DROP TABLE IF EXISTS pingan.refresh_state;
DROP TABLE IF EXISTS pingan.monthly_stats;

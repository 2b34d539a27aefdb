DROP VIEW pingan.hotspots_latest;
DROP TABLE pingan.hotspot_cells;
DROP TABLE pingan.hotspot_runs;

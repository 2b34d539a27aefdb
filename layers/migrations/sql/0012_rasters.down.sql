DROP TABLE pingan.rasters;

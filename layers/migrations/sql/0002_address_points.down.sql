DROP TABLE IF EXISTS pingan.address_points;

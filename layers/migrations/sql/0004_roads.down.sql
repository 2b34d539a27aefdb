DROP TABLE IF EXISTS pingan.road_edges;
DROP TABLE IF EXISTS pingan.road_vertices;

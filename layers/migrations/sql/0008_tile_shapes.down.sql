DROP TABLE pingan.tile_shape_versions;
DROP TABLE pingan.tile_shapes;

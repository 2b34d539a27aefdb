ALTER TABLE pingan.tile_shapes DROP COLUMN tiles;

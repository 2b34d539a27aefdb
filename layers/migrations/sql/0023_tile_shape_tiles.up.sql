-- Tile shapes (issue 3): each shape also lists every tile of its zoom that its source geometry
-- intersects (tile id = x << 20 | y), so a tile tells the features crossing its edge from the
-- store alone instead of looking each one up in the layer's table (tiles/sql.py, tiles/shapes.py).
-- Shapes built before have no list: they are removed with their build stamps, so the service draws
-- those layers from their tables (as for a stale store) until the next build (`pingan tiles
-- build`, an ETL refresh, or `bench/bench_tiles.py --build-shapes`).
TRUNCATE pingan.tile_shapes, pingan.tile_shape_versions;
ALTER TABLE pingan.tile_shapes ADD COLUMN tiles bigint[] NOT NULL;

-- Tile shapes (issue 3): polygon geometry prepared once per zoom (tiles/shapes.py explains).
-- Derived data the owner rebuilds; the service reads it.
CREATE TABLE pingan.tile_shapes (
    layer_id  text NOT NULL,
    zoom      smallint NOT NULL CHECK (zoom BETWEEN 0 AND 18),
    key       text NOT NULL,       -- the feature's id (the layer's id column, as text)
    geom      geometry NOT NULL,   -- MVT units of the whole zoom (4096 per tile), y down, SRID 0
    props     jsonb NOT NULL,      -- the layer's tile properties
    PRIMARY KEY (layer_id, zoom, key)
);
CREATE INDEX tile_shapes_geom_idx ON pingan.tile_shapes USING gist (geom);
CREATE TABLE pingan.tile_shape_versions (
    layer_id  text PRIMARY KEY,
    version   bigint NOT NULL,     -- pingan.layer_versions.version the shapes were built from
    built_at  timestamptz NOT NULL DEFAULT now()
);

-- The service reads the build versions before a caller is known (as it reads layer_versions);
-- the access roles read the shapes. Every shapes statement also reads the layer's own table, so
-- a role without SELECT on that table is refused as before; only layers without row-level
-- security get shapes (tiles/shapes.py: eligible).
GRANT SELECT ON pingan.tile_shape_versions TO pingan_service;
GRANT SELECT ON pingan.tile_shapes TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid,
    pingan_as_analyst, pingan_as_public, pingan_as_system;

-- Standard addresses (标准地址) that users load as the `address_points` layer: the door-level
-- gazetteer of offline geocoding. `normalized` is the matching key the geocoder computes
-- (gis.address.normalize), so lookups are exact index hits.
CREATE TABLE pingan.address_points (
    id            bigserial PRIMARY KEY,
    address       text NOT NULL CHECK (address <> ''),
    normalized    text NOT NULL CHECK (normalized <> ''),
    road          text,
    number        text,
    building      text,
    grid_code     text NOT NULL REFERENCES pingan.grids (code) ON UPDATE CASCADE,
    village_code  text NOT NULL REFERENCES pingan.villages (code) ON UPDATE CASCADE,
    town_code     text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    geom          geometry(Point, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    src_datum     text NOT NULL DEFAULT 'cgcs2000',
    source        text NOT NULL,
    source_id     text NOT NULL,
    batch_id      bigint REFERENCES pingan.etl_batches (id),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id),
    CONSTRAINT address_points_in_hierarchy CHECK (left(grid_code, 12) = village_code AND left(village_code, 9) = town_code)
);
CREATE INDEX address_points_geom_idx ON pingan.address_points USING gist (geom);
CREATE INDEX address_points_normalized_idx ON pingan.address_points (normalized);
CREATE INDEX address_points_village_idx ON pingan.address_points (village_code, road);

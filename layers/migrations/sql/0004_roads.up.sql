-- The road network for patrol routing (pgRouting): vertices and directed costs in metres.
-- A network is a snapshot: each load replaces the edges and vertices of its `network`.
CREATE TABLE pingan.road_vertices (
    id       bigint NOT NULL,
    network  text NOT NULL CHECK (network <> ''),
    geom     geometry(Point, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    PRIMARY KEY (network, id)  -- OSM node ids: two networks of one area share them
);
CREATE INDEX road_vertices_geom_idx ON pingan.road_vertices USING gist (geom);

CREATE TABLE pingan.road_edges (
    id            bigserial PRIMARY KEY,
    network       text NOT NULL CHECK (network <> ''),
    source        bigint NOT NULL,
    target        bigint NOT NULL,
    osm_id        bigint,
    name          text,
    highway       text,
    length_m      double precision NOT NULL CHECK (length_m >= 0),
    cost          double precision NOT NULL,          -- metres along source -> target
    reverse_cost  double precision NOT NULL,          -- metres back; -1: one-way, no way back
    foot          boolean NOT NULL DEFAULT true,
    bicycle       boolean NOT NULL DEFAULT true,
    car           boolean NOT NULL DEFAULT true,
    geom          geometry(LineString, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    batch_id      bigint REFERENCES pingan.etl_batches (id),
    CHECK (reverse_cost = -1 OR reverse_cost >= 0),
    FOREIGN KEY (network, source) REFERENCES pingan.road_vertices (network, id) ON DELETE CASCADE,
    FOREIGN KEY (network, target) REFERENCES pingan.road_vertices (network, id) ON DELETE CASCADE
);
CREATE INDEX road_edges_geom_idx ON pingan.road_edges USING gist (geom);
CREATE INDEX road_edges_source_idx ON pingan.road_edges (source);
CREATE INDEX road_edges_target_idx ON pingan.road_edges (target);
CREATE INDEX road_edges_network_idx ON pingan.road_edges (network);

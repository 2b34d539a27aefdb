-- Monthly hot spots (issue 7): Getis-Ord Gi* with FDR on hexagon cells, per event layer and
-- month, computed by `pingan etl refresh` (etl/hotspots.py) as the owner; served read-only.
CREATE TABLE pingan.hotspot_runs (
    layer          text NOT NULL CHECK (layer IN ('hazards', 'cases')),
    period         date NOT NULL CHECK (extract(day FROM period) = 1),
    method         text NOT NULL,
    window_months  smallint NOT NULL CHECK (window_months BETWEEN 1 AND 24),
    cell_side_m    real NOT NULL CHECK (cell_side_m > 0),
    n_cells        integer NOT NULL CHECK (n_cells >= 0),
    n_events       integer NOT NULL CHECK (n_events >= 0),
    n_hot          integer NOT NULL CHECK (n_hot >= 0),
    n_cold         integer NOT NULL CHECK (n_cold >= 0),
    report         text NOT NULL DEFAULT '',
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (layer, period)
);

CREATE TABLE pingan.hotspot_cells (
    layer   text NOT NULL,
    period  date NOT NULL,
    cell    text NOT NULL CHECK (cell ~ '^-?[0-9]+,-?[0-9]+$'),  -- axial q,r of the hexagon lattice
    events  integer NOT NULL CHECK (events >= 0),
    z       double precision,                                  -- NULL where Gi* is undefined
    p       double precision CHECK (p BETWEEN 0 AND 1),
    p_fdr   double precision CHECK (p_fdr BETWEEN 0 AND 1),
    bin     smallint NOT NULL CHECK (bin BETWEEN -3 AND 3),     -- ArcGIS confidence bin (FDR)
    geom    geometry(MultiPolygon, 4490) NOT NULL,
    PRIMARY KEY (layer, period, cell),
    FOREIGN KEY (layer, period) REFERENCES pingan.hotspot_runs (layer, period) ON DELETE CASCADE
);
CREATE INDEX hotspot_cells_geom_idx ON pingan.hotspot_cells USING gist (geom);

-- The newest month of each layer: what the map and QGIS show as the layer "hotspots".
CREATE VIEW pingan.hotspots_latest AS
SELECT c.layer || ':' || c.cell AS id, c.layer, c.period, c.cell, c.events, c.z, c.p, c.p_fdr, c.bin,
       r.window_months, c.geom
FROM pingan.hotspot_cells c
JOIN pingan.hotspot_runs r USING (layer, period)
WHERE (c.layer, c.period) IN (SELECT layer, max(period) FROM pingan.hotspot_runs GROUP BY layer);

-- Places and aggregates: staff and analysts (counts per cell, no individuals).
GRANT SELECT ON pingan.hotspot_runs, pingan.hotspot_cells, pingan.hotspots_latest
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;

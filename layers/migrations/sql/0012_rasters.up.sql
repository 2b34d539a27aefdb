-- Raster products (issue 7): kernel-density surfaces stored as Cloud-Optimised GeoTIFFs.
--
-- The COG itself lives here (bytea) rather than on a file system: the API is stateless and runs
-- as several workers and replicas (ARCHITECTURE section 6), so every one of them must read the
-- same bytes, under the same transaction and row-level security as any other layer
-- (docs/rasters.md). Rasters are immutable: a refresh deletes a month's raster and inserts a
-- new one (a new id), so anything cached per id (decoded arrays, tiles, ETags) stays right.
--
-- Who reads what: the monthly district densities (audience 'district', made by the ETL refresh)
-- are aggregates like the hot spots: staff and analysts. A raster made by a job (audience
-- 'owner') is its owner's, and admins'. The ETL writes the monthly ones as the table owner; the
-- service side may only add its caller's own job rasters (OGC API - Processes runs jobs acting for
-- the caller, migration 0011), and never changes or deletes one.
CREATE TABLE pingan.rasters (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('density')),
    layer         text NOT NULL CHECK (layer ~ '^[a-z][a-z0-9_-]{0,63}$'),  -- the source layer
    period        date CHECK (extract(day FROM period) = 1),                  -- monthly products
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,
    crs           text NOT NULL,                                              -- e.g. EPSG:4549
    bounds        double precision[] NOT NULL CHECK (cardinality(bounds) = 4),        -- in crs
    bounds_crs84  double precision[] NOT NULL CHECK (cardinality(bounds_crs84) = 4),  -- lon/lat
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    cell_size     double precision NOT NULL CHECK (cell_size > 0),
    stats         jsonb NOT NULL,              -- min, max, mean, percentiles of the cells > 0
    units         text NOT NULL,
    audience      text NOT NULL CHECK (audience IN ('district', 'owner')),
    owner         text NOT NULL,
    job_id        uuid REFERENCES pingan.jobs (id) ON DELETE CASCADE,  -- the OGC API job that made it
    created       timestamptz NOT NULL DEFAULT now(),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes    integer NOT NULL CHECK (size_bytes > 0),
    cog           bytea NOT NULL,
    CONSTRAINT rasters_job_is_private CHECK (job_id IS NULL OR audience = 'owner'),
    CONSTRAINT rasters_district_is_monthly CHECK (audience = 'owner' OR period IS NOT NULL)
);
-- A COG is compressed already: keep it out of line and uncompressed, which also lets
-- substring() read a byte range without reading the rest (HTTP range requests).
ALTER TABLE pingan.rasters ALTER COLUMN cog SET STORAGE EXTERNAL;
-- one monthly raster per kind, layer and month
CREATE UNIQUE INDEX rasters_monthly_idx ON pingan.rasters (kind, layer, period) WHERE audience = 'district';
CREATE INDEX rasters_owner_idx ON pingan.rasters (owner, created);
CREATE INDEX rasters_job_idx ON pingan.rasters (job_id) WHERE job_id IS NOT NULL;

ALTER TABLE pingan.rasters ENABLE ROW LEVEL SECURITY;
CREATE POLICY rasters_all ON pingan.rasters FOR SELECT TO pingan_as_admin, pingan_as_system USING (true);
CREATE POLICY rasters_shared ON pingan.rasters FOR SELECT
    TO pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst
    USING (audience = 'district' OR owner = pingan.ctx_user());

CREATE POLICY rasters_insert_own_job ON pingan.rasters FOR INSERT
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system
    WITH CHECK (owner = pingan.ctx_user() AND audience = 'owner' AND job_id IS NOT NULL);

GRANT SELECT, INSERT ON pingan.rasters
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;
GRANT USAGE ON SEQUENCE pingan.rasters_id_seq
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;

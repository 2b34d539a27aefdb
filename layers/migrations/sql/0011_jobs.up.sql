-- OGC API - Processes (issue 7): jobs, their cell results, and the analyses' only door to events.
--
-- Jobs belong to their caller. The web service writes them acting for the caller (layers/db.py
-- set_principal), so row-level security decides: a caller sees, updates and dismisses only its
-- own jobs (owner = ctx_user()); admins and the system see every job. Nobody on the service side
-- deletes a job row: dismissing sets status 'dismissed' and drops the job's cells.
--
-- A job is run by one API worker process (its "runner"), which holds the session advisory lock
-- (72011, runner) for as long as it lives. A job still accepted/running whose runner holds no
-- lock was interrupted (restart, crash): pingan.fail_interrupted_jobs() marks it failed. The
-- function runs as the owner because the sweep covers every caller's jobs; it changes nothing
-- but those rows' status and message.
CREATE TABLE pingan.jobs (
    id          uuid PRIMARY KEY,
    process_id  text NOT NULL CHECK (process_id ~ '^[a-z][a-z0-9-]{0,63}$'),
    owner       text NOT NULL,
    owner_role  text NOT NULL CHECK (owner_role IN ('admin', 'command', 'town', 'grid', 'analyst', 'public', 'system')),
    owner_areas text[] NOT NULL DEFAULT '{}',
    mode        text NOT NULL CHECK (mode IN ('sync', 'async')),
    status      text NOT NULL CHECK (status IN ('accepted', 'running', 'successful', 'failed', 'dismissed')),
    message     text NOT NULL DEFAULT '',
    progress    smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    inputs      jsonb NOT NULL DEFAULT '{}'::jsonb,
    results     jsonb,
    runner      integer NOT NULL CHECK (runner > 0),
    created     timestamptz NOT NULL DEFAULT now(),
    started     timestamptz,
    finished    timestamptz,
    updated     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_owner_idx ON pingan.jobs (owner, created DESC);
CREATE INDEX jobs_active_idx ON pingan.jobs (runner) WHERE status IN ('accepted', 'running');

ALTER TABLE pingan.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_all_read ON pingan.jobs FOR SELECT TO pingan_as_admin, pingan_as_system USING (true);
CREATE POLICY jobs_all_update ON pingan.jobs FOR UPDATE TO pingan_as_admin, pingan_as_system
    USING (true) WITH CHECK (true);
CREATE POLICY jobs_all_insert ON pingan.jobs FOR INSERT TO pingan_as_admin, pingan_as_system
    WITH CHECK (owner = pingan.ctx_user() AND owner_role = pingan.ctx_role());
CREATE POLICY jobs_own ON pingan.jobs TO pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst
    USING (owner = pingan.ctx_user())
    WITH CHECK (owner = pingan.ctx_user() AND owner_role = pingan.ctx_role());

-- Cell results of the hot-spot jobs (Gi*, local Moran, emerging hot spots), one row per cell:
-- aggregates (event counts and statistics per hexagon or grid), never an event. They follow their
-- job: readable (and removable) exactly when the job is.
CREATE TABLE pingan.job_cells (
    job_id    uuid NOT NULL REFERENCES pingan.jobs (id) ON DELETE CASCADE,
    cell      text NOT NULL CHECK (length(cell) BETWEEN 1 AND 40),
    events    integer NOT NULL CHECK (events >= 0),
    z         double precision,
    p         double precision CHECK (p BETWEEN 0 AND 1),
    p_fdr     double precision CHECK (p_fdr BETWEEN 0 AND 1),
    bin       smallint CHECK (bin BETWEEN -3 AND 3),
    local_i   double precision,                                -- local Moran's I
    code      smallint,                                        -- quadrant (1..4) or emerging category
    label     text,                                            -- HH/LH/LL/HL/ns, or the category name
    geom      geometry(MultiPolygon, 4490) NOT NULL,
    PRIMARY KEY (job_id, cell)
);
CREATE INDEX job_cells_geom_idx ON pingan.job_cells USING gist (geom);

ALTER TABLE pingan.job_cells ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_cells_job ON pingan.job_cells
    USING (EXISTS (SELECT 1 FROM pingan.jobs j WHERE j.id = job_id))
    WITH CHECK (EXISTS (SELECT 1 FROM pingan.jobs j WHERE j.id = job_id));

-- The served layer "hotspot-results" (layers/catalog.py): the caller's own job cells.
CREATE VIEW pingan.hotspot_results WITH (security_invoker, security_barrier) AS
SELECT c.job_id::text || ':' || c.cell AS id, c.job_id::text AS job_id, j.process_id,
       (j.finished AT TIME ZONE 'UTC')::date AS finished, c.cell, c.events, c.z, c.p, c.p_fdr, c.bin,
       c.local_i, c.code, c.label, c.geom
FROM pingan.job_cells c
JOIN pingan.jobs j ON j.id = c.job_id
WHERE j.status = 'successful';

CREATE FUNCTION pingan.fail_interrupted_jobs() RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pingan, pg_catalog, pg_temp AS $$
    WITH failed AS (
        UPDATE pingan.jobs j
        SET status = 'failed', finished = now(), updated = now(),
            message = 'interrupted: the API process running this job stopped (restart or crash) '
                      'before it finished; run the process again'
        WHERE j.status IN ('accepted', 'running')
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                          WHERE l.locktype = 'advisory' AND l.classid = 72011
                            AND l.objid = j.runner::oid AND l.objsubid = 2 AND l.granted)
        RETURNING 1)
    SELECT count(*)::integer FROM failed
$$;
REVOKE ALL ON FUNCTION pingan.fail_interrupted_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pingan.fail_interrupted_jobs() TO pingan_service;

-- --------------------------------------------------------------------------------------------
-- Events for the analyses. Analysts may not read hazards or cases (0005), yet run hot-spot
-- analyses on them: they receive only aggregates. This function is their one door: it returns
-- no identifier, text or exact time, only the point in metres (EPSG:4549), the month, the type,
-- the state and the town/village codes, of the events in [p_from, p_to) within the caller's jurisdiction:
-- town -> its town(s), grid -> its grids, analyst/command/admin/system -> the district,
-- anyone else -> nothing. The API aggregates them (with a minimum cell size and bandwidth for
-- callers who may not read individual events; docs/processes.md) before anything leaves.
CREATE FUNCTION pingan.analysis_events(
    p_layer text, p_from timestamptz, p_to timestamptz, p_types text[] DEFAULT NULL, p_states text[] DEFAULT NULL,
    p_area text DEFAULT NULL
) RETURNS TABLE (x double precision, y double precision, month date, type text, state text,
                 town_code text, village_code text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pingan, public, pg_catalog, pg_temp AS $$
DECLARE
    r text := pingan.ctx_role();
    a text[] := coalesce(pingan.ctx_areas(), '{}');
BEGIN
    IF r IS NULL OR r NOT IN ('admin', 'command', 'system', 'analyst', 'town', 'grid') THEN
        RETURN;
    END IF;
    IF p_layer = 'hazards' THEN
        RETURN QUERY
        SELECT ST_X(t.p), ST_Y(t.p), t.m, t.category, t.state, t.town_code, t.village_code
        FROM (SELECT ST_Transform(h.geom, 4549) AS p, date_trunc('month', h.found_at AT TIME ZONE 'Asia/Shanghai')::date AS m,
                     h.category, h.state, h.town_code, h.village_code
              FROM pingan.hazards h
              WHERE h.found_at >= p_from AND h.found_at < p_to
                AND (p_types IS NULL OR h.category = ANY (p_types))
                AND (p_states IS NULL OR h.state = ANY (p_states))
                AND (p_area IS NULL OR p_area IN (h.town_code, h.village_code, h.grid_code))
                AND CASE r WHEN 'town' THEN h.town_code = ANY (a)
                           WHEN 'grid' THEN h.grid_code = ANY (a)
                           ELSE true END) t;
    ELSIF p_layer = 'cases' THEN
        RETURN QUERY
        SELECT ST_X(t.p), ST_Y(t.p), t.m, t.category, t.state, t.town_code, t.village_code
        FROM (SELECT ST_Transform(c.geom, 4549) AS p, date_trunc('month', c.accepted_at AT TIME ZONE 'Asia/Shanghai')::date AS m,
                     c.category, c.state, c.town_code, c.village_code
              FROM pingan.cases c
              WHERE c.accepted_at >= p_from AND c.accepted_at < p_to
                AND (p_types IS NULL OR c.category = ANY (p_types))
                AND (p_states IS NULL OR c.state = ANY (p_states))
                AND (p_area IS NULL OR p_area IN (c.town_code, c.village_code, c.grid_code))
                AND CASE r WHEN 'town' THEN c.town_code = ANY (a)
                           WHEN 'grid' THEN c.grid_code = ANY (a)
                           ELSE true END) t;
    ELSE
        RAISE EXCEPTION 'unknown event layer %', p_layer USING ERRCODE = '22023';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION pingan.analysis_events(text, timestamptz, timestamptz, text[], text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pingan.analysis_events(text, timestamptz, timestamptz, text[], text[], text)
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;

-- Privileges: every role that may run a process (not public).
GRANT SELECT, INSERT, UPDATE ON pingan.jobs
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;
GRANT SELECT, INSERT, DELETE ON pingan.job_cells
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;
GRANT SELECT ON pingan.hotspot_results
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;

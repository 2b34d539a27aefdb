-- A record the loader placed only by its address, matched to a village or a town (geocode_level
-- 'village' or 'town'), stands at that area's representative point. Until now it also carried the
-- grid (and, for a town, the village) that point happens to fall in: a guess made by geometry,
-- which piled every such record of a village into one grid's monthly statistics, hot spots and
-- counts. The place now says only what is known: a village-level record has its village and
-- town and no grid; a town-level one its town alone. The constraint *_placed ties the codes to the
-- level; the hierarchy CHECKs still hold where codes are present (a NULL code passes them).
-- A new level, 'grid': the address matched a village or town and the export's own 所属网格 names
-- one of its grids (etl/locate.py); the record stands at that grid's representative point.
--
-- The monthly statistics count such records in their village or town, not in any grid
-- (etl/refresh.py reads them through the partial indexes *_coarse_idx: they are few); the grid
-- policies need no clause of their own any more (0025's is dropped: a record without a grid is
-- no grid's, one placed to a grid by its export is that grid's); the analyses leave out every
-- record that does not stand at its own place (a representative point is not where anything
-- happened); persons served to those who may not see exact locations stand at a point of their
-- grid, else of their village, else of their town.


DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['hazards', 'cases', 'persons', 'key_sites'] LOOP
        EXECUTE format('ALTER TABLE pingan.%I ALTER COLUMN grid_code DROP NOT NULL, '
                       'ALTER COLUMN village_code DROP NOT NULL', t);
        EXECUTE format('ALTER TABLE pingan.%I DROP CONSTRAINT %I, ADD CONSTRAINT %I '
                       'CHECK (geocode_level IN (''door'', ''grid'', ''village'', ''town''))',
                       t, t || '_geocode_level_check', t || '_geocode_level_check');
        EXECUTE format('UPDATE pingan.%I SET grid_code = NULL, village_code = CASE WHEN '
                       'geocode_level = ''town'' THEN NULL ELSE village_code END '
                       'WHERE geocode_level IN (''village'', ''town'')', t);
        EXECUTE format('ALTER TABLE pingan.%I ADD CONSTRAINT %I CHECK (CASE geocode_level '
                       'WHEN ''town'' THEN grid_code IS NULL AND village_code IS NULL '
                       'WHEN ''village'' THEN grid_code IS NULL AND village_code IS NOT NULL '
                       'ELSE grid_code IS NOT NULL AND village_code IS NOT NULL END)', t, t || '_placed');
    END LOOP;
END $$;

-- The monthly statistics (and the index's inputs) still count such records in the grids they
-- no longer have: the next `pingan etl refresh` recomputes everything (no last refresh: full),
-- where an incremental one would count them in their grid's old rows and again on their own.
DELETE FROM pingan.refresh_state WHERE job = 'monthly_stats';

-- The places and starts that an update took records away from (a reload that moved a hazard or
-- case to another grid, or to its village only, or changed when it was found): the refresh of
-- the batch recomputes those months too (etl/upsert.py writes, etl/refresh.py reads and clears).
-- Before, they kept counting the record until a full refresh, and a village or town counted it
-- twice (its old grid's rows and its new place).
CREATE TABLE pingan.refresh_moved (
    id        bigserial PRIMARY KEY,
    batch_id  bigint NOT NULL REFERENCES pingan.etl_batches (id) ON DELETE CASCADE,
    code      text NOT NULL,
    t0        timestamptz NOT NULL
);
CREATE INDEX refresh_moved_batch_idx ON pingan.refresh_moved (batch_id);

CREATE INDEX hazards_coarse_idx ON pingan.hazards (coalesce(village_code, town_code)) WHERE grid_code IS NULL;

CREATE INDEX cases_coarse_idx ON pingan.cases (coalesce(village_code, town_code)) WHERE grid_code IS NULL;

-- 0025's clause, now said by the grid itself.
ALTER POLICY hazards_grid ON pingan.hazards
    USING (grid_code = ANY (pingan.ctx_areas())) WITH CHECK (grid_code = ANY (pingan.ctx_areas()));
ALTER POLICY cases_grid ON pingan.cases
    USING (grid_code = ANY (pingan.ctx_areas())) WITH CHECK (grid_code = ANY (pingan.ctx_areas()));
ALTER POLICY persons_grid ON pingan.persons
    USING (grid_code = ANY (pingan.ctx_areas())) WITH CHECK (grid_code = ANY (pingan.ctx_areas()));

-- Persons without a grid stay in the served view (an inner join with grids dropped them), at a
-- point of their village or town for those who may not see where they live.
CREATE OR REPLACE VIEW pingan.persons_served WITH (security_invoker, security_barrier) AS
SELECT p.id, p.name_enc, p.id_number_enc, p.phone_enc, p.gender, p.birth_year, p.categories,
       p.grade, p.grade_since, p.status, p.registered_at, p.grid_code, p.village_code, p.town_code,
       CASE WHEN pingan.ctx_locates_persons() THEN p.address END AS address,
       CASE WHEN pingan.ctx_locates_persons() THEN p.geom
            ELSE ST_PointOnSurface(coalesce(g.geom, v.geom, t.geom))::geometry(Point, 4490) END AS geom,
       pingan.ctx_locates_persons() AS exact_location,
       p.updated_at
FROM pingan.persons p
LEFT JOIN pingan.grids g ON g.code = p.grid_code
LEFT JOIN pingan.villages v ON v.code = p.village_code AND p.grid_code IS NULL
LEFT JOIN pingan.towns t ON t.code = p.town_code AND p.village_code IS NULL;

-- The analyses: only events placed by their coordinates or to their door have a point (x, y);
-- the others come without one, so that an analysis can say how many it left out.
CREATE OR REPLACE FUNCTION pingan.analysis_events(
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
        FROM (SELECT CASE WHEN coalesce(h.geocode_level, 'door') = 'door' THEN ST_Transform(h.geom, 4549) END AS p, date_trunc('month', h.found_at AT TIME ZONE 'Asia/Shanghai')::date AS m,
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
        FROM (SELECT CASE WHEN coalesce(c.geocode_level, 'door') = 'door' THEN ST_Transform(c.geom, 4549) END AS p, date_trunc('month', c.accepted_at AT TIME ZONE 'Asia/Shanghai')::date AS m,
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

CREATE OR REPLACE VIEW pingan.persons_served WITH (security_invoker, security_barrier) AS
SELECT p.id, p.name_enc, p.id_number_enc, p.phone_enc, p.gender, p.birth_year, p.categories,
       p.grade, p.grade_since, p.status, p.registered_at, p.grid_code, p.village_code, p.town_code,
       CASE WHEN pingan.ctx_locates_persons() THEN p.address END AS address,
       CASE WHEN pingan.ctx_locates_persons() THEN p.geom
            ELSE ST_PointOnSurface(g.geom)::geometry(Point, 4490) END AS geom,
       pingan.ctx_locates_persons() AS exact_location,
       p.updated_at
FROM pingan.persons p
JOIN pingan.grids g ON g.code = p.grid_code;

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

-- Back to a grid for every record: a grid of its own village (of its town, for one placed to a
-- town), the one its point lies in, else the nearest (lowest code on a tie). A record placed to
-- 'grid' by its 所属网格 goes back to 'village' (0026 has no such level): down then up loses
-- that level. A village or town without grids stops the downgrade with a count.
DO $$
DECLARE t text; n bigint;
BEGIN
    FOREACH t IN ARRAY ARRAY['hazards', 'cases', 'persons', 'key_sites'] LOOP
        EXECUTE format('ALTER TABLE pingan.%I DROP CONSTRAINT %I', t, t || '_placed');
        EXECUTE format('UPDATE pingan.%I SET geocode_level = ''village'' WHERE geocode_level = ''grid''', t);
        EXECUTE format('ALTER TABLE pingan.%I DROP CONSTRAINT %I, ADD CONSTRAINT %I '
                       'CHECK (geocode_level IN (''door'', ''village'', ''town''))',
                       t, t || '_geocode_level_check', t || '_geocode_level_check');
        EXECUTE format($f$
            UPDATE pingan.%I r SET grid_code = g.code, village_code = g.village_code
            FROM (SELECT r2.id, (SELECT g2.code FROM pingan.grids g2
                                 WHERE g2.village_code = r2.village_code
                                    OR (r2.village_code IS NULL AND g2.village_code IN
                                        (SELECT v.code FROM pingan.villages v WHERE v.town_code = r2.town_code))
                                 ORDER BY ST_Intersects(g2.geom, r2.geom) DESC, g2.geom <-> r2.geom, g2.code
                                 LIMIT 1) AS code
                  FROM pingan.%I r2 WHERE r2.grid_code IS NULL) p
            JOIN pingan.grids g ON g.code = p.code
            WHERE r.id = p.id$f$, t, t);
        EXECUTE format('SELECT count(*) FROM pingan.%I WHERE grid_code IS NULL', t) INTO n;
        IF n > 0 THEN
            RAISE EXCEPTION '% % placed to a village or town that has no grid: 0026 cannot hold them', n, t
                USING HINT = 'load the grids of those villages (or delete those records) and downgrade again';
        END IF;
        EXECUTE format('ALTER TABLE pingan.%I ALTER COLUMN grid_code SET NOT NULL, '
                       'ALTER COLUMN village_code SET NOT NULL', t);
    END LOOP;
END $$;

DROP INDEX pingan.hazards_coarse_idx;

DROP INDEX pingan.cases_coarse_idx;

ALTER POLICY hazards_grid ON pingan.hazards
    USING (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door')
    WITH CHECK (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door');
ALTER POLICY cases_grid ON pingan.cases
    USING (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door')
    WITH CHECK (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door');
ALTER POLICY persons_grid ON pingan.persons
    USING (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door')
    WITH CHECK (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door');

-- Statistics made with the places above are recomputed by the next refresh (see the up).
DELETE FROM pingan.refresh_state WHERE job = 'monthly_stats';
DROP TABLE pingan.refresh_moved;

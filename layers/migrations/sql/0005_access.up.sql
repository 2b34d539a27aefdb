-- Access control in the database (issue 4).
--
-- The web service connects as pingan_service: not the owner, not a superuser, NOBYPASSRLS and
-- NOINHERIT, so by itself it can read next to nothing. Each request's transaction states the
-- caller (layers/db.py set_principal): user, role and areas as transaction-local settings, and
-- SET LOCAL ROLE to the caller's access role, one NOLOGIN role per level:
--
--   pingan_as_admin, _command, _system  every row of the district
--   pingan_as_town                      rows of its town(s)   (areas = 9-digit town codes)
--   pingan_as_grid                      rows of its grid(s)   (areas = 15-digit grid codes)
--   pingan_as_analyst, pingan_as_public no individual at all: no privilege on persons, hazards
--                                       or cases; persons only as suppressed counts
--
-- What a level may read is decided twice: by the privileges granted below (a table not granted
-- does not exist for it) and, inside a granted table, by row-level-security policies per role.
-- Policies per role (instead of one policy branching on a setting) leave the planner a plain
-- predicate: `true` for the command centre, `town_code = ANY (...)` for a town, so row
-- estimates (numberMatched of large collections) stay right.
--
-- The roles are created with the cluster (cli/devdb.py, docker/db/initdb); tests/layers/
-- test_access.py holds the expected privilege matrix, so a table added later without a
-- decision fails the tests. The owner (ETL, CLI) is not subject to the policies: it is the
-- trusted batch side, and the service never connects as it (layers/db.py check_service_role).

DO $$
DECLARE
    r text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pingan_service') THEN
        RAISE EXCEPTION 'role pingan_service is missing: create it first (pingan db up does; see docs/security.md)';
    END IF;
    IF (SELECT rolsuper OR rolbypassrls OR rolinherit FROM pg_roles WHERE rolname = 'pingan_service') THEN
        RAISE EXCEPTION 'role pingan_service must be NOSUPERUSER NOBYPASSRLS NOINHERIT';
    END IF;
    FOREACH r IN ARRAY ARRAY['admin', 'command', 'town', 'grid', 'analyst', 'public', 'system'] LOOP
        IF NOT pg_has_role('pingan_service', 'pingan_as_' || r, 'MEMBER') THEN
            RAISE EXCEPTION 'role pingan_as_% is missing or not granted to pingan_service (see docs/security.md)', r;
        END IF;
    END LOOP;
END
$$;

-- May the caller see where exactly a person lives? Those responsible for the person: the
-- command centre, the person's town, the person's grid. Admins administer; they see the grid.
CREATE FUNCTION pingan.ctx_locates_persons() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(pingan.ctx_role() IN ('command', 'town', 'grid', 'system'), false)
$$;

-- Privacy settings the service cannot change (the owner sets them).
CREATE TABLE pingan.privacy_config (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    min_count  integer NOT NULL DEFAULT 5 CHECK (min_count BETWEEN 1 AND 100)
);
INSERT INTO pingan.privacy_config DEFAULT VALUES;

-- --------------------------------------------------------------------------------------------
-- Row-level security: one policy per access level on each table that holds individuals.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['persons', 'hazards', 'cases'] LOOP
        EXECUTE format('ALTER TABLE pingan.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON pingan.%I TO pingan_as_admin, pingan_as_command, pingan_as_system'
                       ' USING (true) WITH CHECK (true)', t || '_district', t);
        EXECUTE format('CREATE POLICY %I ON pingan.%I TO pingan_as_town'
                       ' USING (town_code = ANY (pingan.ctx_areas()))'
                       ' WITH CHECK (town_code = ANY (pingan.ctx_areas()))', t || '_town', t);
        EXECUTE format('CREATE POLICY %I ON pingan.%I TO pingan_as_grid'
                       ' USING (grid_code = ANY (pingan.ctx_areas()))'
                       ' WITH CHECK (grid_code = ANY (pingan.ctx_areas()))', t || '_grid', t);
    END LOOP;
END
$$;

-- The child tables follow their parent: the subquery itself runs under the parent's policies.
ALTER TABLE pingan.person_grades ENABLE ROW LEVEL SECURITY;
CREATE POLICY person_grades_parent ON pingan.person_grades
    USING (EXISTS (SELECT 1 FROM pingan.persons p WHERE p.id = person_id))
    WITH CHECK (EXISTS (SELECT 1 FROM pingan.persons p WHERE p.id = person_id));
ALTER TABLE pingan.person_visits ENABLE ROW LEVEL SECURITY;
CREATE POLICY person_visits_parent ON pingan.person_visits
    USING (EXISTS (SELECT 1 FROM pingan.persons p WHERE p.id = person_id))
    WITH CHECK (EXISTS (SELECT 1 FROM pingan.persons p WHERE p.id = person_id));
ALTER TABLE pingan.hazard_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY hazard_events_parent ON pingan.hazard_events
    USING (EXISTS (SELECT 1 FROM pingan.hazards h WHERE h.id = hazard_id))
    WITH CHECK (EXISTS (SELECT 1 FROM pingan.hazards h WHERE h.id = hazard_id));
ALTER TABLE pingan.case_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY case_events_parent ON pingan.case_events
    USING (EXISTS (SELECT 1 FROM pingan.cases c WHERE c.id = case_id))
    WITH CHECK (EXISTS (SELECT 1 FROM pingan.cases c WHERE c.id = case_id));

-- --------------------------------------------------------------------------------------------
-- Persons as counts, for those who may not see individuals. The counting view runs with its
-- owner's rights and is not granted to the service; the two served views (also owner's rights,
-- security_barrier) show the caller only its jurisdiction, and only counts of at least
-- privacy_config.min_count: smaller non-zero counts are NULL and the row says suppressed.
-- Zero is shown: it reveals nobody.
CREATE FUNCTION pingan.suppress(n bigint, k integer) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN n BETWEEN 1 AND k - 1 THEN NULL ELSE n END $$;

CREATE VIEW pingan.person_counts AS
SELECT grid_code, village_code, town_code,
       count(*) AS total,
       count(*) FILTER (WHERE grade = 'red') AS grade_red,
       count(*) FILTER (WHERE grade = 'yellow') AS grade_yellow,
       count(*) FILTER (WHERE grade = 'green') AS grade_green,
       count(*) FILTER (WHERE 'career_failure' = ANY (categories)) AS career_failure,
       count(*) FILTER (WHERE 'family_discord' = ANY (categories)) AS family_discord,
       count(*) FILTER (WHERE 'life_frustration' = ANY (categories)) AS life_frustration,
       count(*) FILTER (WHERE 'mental_imbalance' = ANY (categories)) AS mental_imbalance,
       count(*) FILTER (WHERE 'abnormal_behaviour' = ANY (categories)) AS abnormal_behaviour
FROM pingan.persons WHERE status = 'active'
GROUP BY grid_code, village_code, town_code;

-- One row per area (grid or village) with its raw counts, for the two served views below.
CREATE VIEW pingan.person_counts_by_area AS
SELECT 'grid' AS level, g.code, g.name, v.town_code, g.village_code, g.geom,
       coalesce(c.total, 0) AS total, coalesce(c.grade_red, 0) AS grade_red,
       coalesce(c.grade_yellow, 0) AS grade_yellow, coalesce(c.grade_green, 0) AS grade_green,
       coalesce(c.career_failure, 0) AS career_failure, coalesce(c.family_discord, 0) AS family_discord,
       coalesce(c.life_frustration, 0) AS life_frustration,
       coalesce(c.mental_imbalance, 0) AS mental_imbalance,
       coalesce(c.abnormal_behaviour, 0) AS abnormal_behaviour
FROM pingan.grids g
JOIN pingan.villages v ON v.code = g.village_code
LEFT JOIN pingan.person_counts c ON c.grid_code = g.code
UNION ALL
SELECT 'village', v.code, v.name, v.town_code, v.code, v.geom,
       coalesce(sum(c.total), 0)::bigint, coalesce(sum(c.grade_red), 0)::bigint, coalesce(sum(c.grade_yellow), 0)::bigint,
       coalesce(sum(c.grade_green), 0)::bigint, coalesce(sum(c.career_failure), 0)::bigint,
       coalesce(sum(c.family_discord), 0)::bigint, coalesce(sum(c.life_frustration), 0)::bigint,
       coalesce(sum(c.mental_imbalance), 0)::bigint, coalesce(sum(c.abnormal_behaviour), 0)::bigint
FROM pingan.villages v
LEFT JOIN pingan.person_counts c ON c.village_code = v.code
GROUP BY v.code, v.name, v.town_code, v.geom;

-- May the caller see the counts of this area? District-wide roles everything; a town user its
-- town; a grid user its grids and the villages they lie in.
CREATE FUNCTION pingan.ctx_sees_area(level text, code text, town text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT CASE pingan.ctx_role()
        WHEN 'town' THEN town = ANY (pingan.ctx_areas())
        WHEN 'grid' THEN CASE level
            WHEN 'grid' THEN code = ANY (pingan.ctx_areas())
            ELSE EXISTS (SELECT 1 FROM unnest(pingan.ctx_areas()) a WHERE left(a, 12) = code) END
        ELSE coalesce(pingan.ctx_role() IN ('admin', 'command', 'system', 'analyst', 'public'), false)
    END
$$;

CREATE VIEW pingan.persons_by_area WITH (security_barrier) AS
SELECT a.level, a.code, a.name, a.town_code, a.village_code,
       pingan.suppress(a.total, k.min_count) AS total,
       pingan.suppress(a.grade_red, k.min_count) AS grade_red,
       pingan.suppress(a.grade_yellow, k.min_count) AS grade_yellow,
       pingan.suppress(a.grade_green, k.min_count) AS grade_green,
       pingan.suppress(a.career_failure, k.min_count) AS career_failure,
       pingan.suppress(a.family_discord, k.min_count) AS family_discord,
       pingan.suppress(a.life_frustration, k.min_count) AS life_frustration,
       pingan.suppress(a.mental_imbalance, k.min_count) AS mental_imbalance,
       pingan.suppress(a.abnormal_behaviour, k.min_count) AS abnormal_behaviour,
       EXISTS (SELECT 1 FROM unnest(ARRAY[a.total, a.grade_red, a.grade_yellow, a.grade_green,
                                          a.career_failure, a.family_discord, a.life_frustration,
                                          a.mental_imbalance, a.abnormal_behaviour]) n
               WHERE n BETWEEN 1 AND k.min_count - 1) AS suppressed,
       a.geom
FROM pingan.person_counts_by_area a
CROSS JOIN pingan.privacy_config k
WHERE pingan.ctx_sees_area(a.level, a.code, a.town_code);

CREATE VIEW pingan.persons_by_grid WITH (security_barrier) AS
SELECT code, name, village_code, town_code, total, grade_red, grade_yellow, grade_green,
       career_failure, family_discord, life_frustration, mental_imbalance, abnormal_behaviour,
       suppressed, geom::geometry(MultiPolygon, 4490) AS geom
FROM pingan.persons_by_area WHERE level = 'grid';

CREATE VIEW pingan.persons_by_village WITH (security_barrier) AS
SELECT code, name, town_code, total, grade_red, grade_yellow, grade_green,
       career_failure, family_discord, life_frustration, mental_imbalance, abnormal_behaviour,
       suppressed, geom::geometry(MultiPolygon, 4490) AS geom
FROM pingan.persons_by_area WHERE level = 'village';

-- Persons as the service reads them (security_invoker: the persons policy applies to the
-- caller). The exact location only for those responsible; others get a point in the grid.
CREATE VIEW pingan.persons_served WITH (security_invoker, security_barrier) AS
SELECT p.id, p.name_enc, p.id_number_enc, p.phone_enc, p.gender, p.birth_year, p.categories,
       p.grade, p.grade_since, p.status, p.registered_at, p.grid_code, p.village_code, p.town_code,
       CASE WHEN pingan.ctx_locates_persons() THEN p.address END AS address,
       CASE WHEN pingan.ctx_locates_persons() THEN p.geom
            ELSE ST_PointOnSurface(g.geom)::geometry(Point, 4490) END AS geom,
       pingan.ctx_locates_persons() AS exact_location,
       p.updated_at
FROM pingan.persons p
JOIN pingan.grids g ON g.code = p.grid_code;

-- --------------------------------------------------------------------------------------------
-- Privileges. Nothing in the schema for anyone unless granted here.
REVOKE ALL ON ALL TABLES IN SCHEMA pingan FROM PUBLIC;
GRANT USAGE ON SCHEMA pingan TO pingan_service, pingan_as_admin, pingan_as_command, pingan_as_town,
    pingan_as_grid, pingan_as_analyst, pingan_as_public, pingan_as_system;

-- The service itself, before any caller is known: /healthz, tile-cache versions, the audit log.
GRANT SELECT ON public.alembic_version, pingan.layer_versions TO pingan_service;

-- Every level: the administrative areas, layer versions, persons as suppressed counts.
GRANT SELECT ON pingan.towns, pingan.villages, pingan.layer_versions, pingan.workflow_transitions,
    pingan.persons_by_grid, pingan.persons_by_village
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_public, pingan_as_system;

-- Analysts and staff: places and aggregates, no individuals.
GRANT SELECT ON pingan.grids, pingan.key_sites, pingan.patrol_teams, pingan.monthly_stats,
    pingan.refresh_state, pingan.address_points, pingan.road_vertices, pingan.road_edges
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;

-- Staff: individuals, filtered by the policies above.
GRANT SELECT ON pingan.hazards, pingan.hazard_events, pingan.cases, pingan.case_events,
    pingan.persons, pingan.person_grades, pingan.person_visits, pingan.persons_served,
    pingan.etl_batches
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_system;

-- Rejected rows keep the raw source row (which may hold personal data): admins only.
GRANT SELECT ON pingan.etl_rejects TO pingan_as_admin, pingan_as_system;

-- The audit log: everyone appends; nobody on the service side reads back, changes or deletes.
GRANT INSERT ON pingan.audit_log TO pingan_service, pingan_as_admin, pingan_as_command,
    pingan_as_town, pingan_as_grid, pingan_as_analyst, pingan_as_public, pingan_as_system;
GRANT USAGE ON SEQUENCE pingan.audit_log_id_seq TO pingan_service, pingan_as_admin,
    pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst, pingan_as_public,
    pingan_as_system;

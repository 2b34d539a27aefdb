-- Back to 0005's counts: grid and village only, each count suppressed on its own.
DROP VIEW pingan.persons_by_town;
DROP VIEW pingan.persons_by_village;
DROP VIEW pingan.persons_by_grid;
DROP VIEW pingan.persons_by_area;
DROP VIEW pingan.person_counts_by_area;
DROP TRIGGER persons_repattern ON pingan.persons;
DROP TRIGGER persons_repattern_truncate ON pingan.persons;
DROP TRIGGER privacy_config_repattern ON pingan.privacy_config;
DROP FUNCTION pingan.person_counts_repattern();
DROP TABLE pingan.person_counts_pattern;
DROP FUNCTION pingan.person_counts_withheld();

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
CREATE OR REPLACE FUNCTION pingan.ctx_sees_area(level text, code text, town text) RETURNS boolean
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

GRANT SELECT ON pingan.persons_by_grid, pingan.persons_by_village
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_public, pingan_as_system;

-- Five-loss persons as counts: a town level, and counts that cannot be found by subtraction.
--
-- Until now the served counts (0005) hid each count under privacy_config.min_count on its own
-- (primary suppression), which leaves it open to subtraction: a village shown with 12 persons and
-- all of its grids shown but one gives that grid's count; a grid's total less its red and yellow
-- gives its green; since 0027, a village less its grids gives the persons placed only to the
-- village, and a person placed only to a town was in no count at all.
--
-- Now every count is a cell of additive relations, and a relation may not let a small group be
-- worked out:
--   village = its grids + its own persons (placed to the village only),
--   town    = its villages + its own persons (placed to the town only),
--   total   = red + yellow + green (in every area, and in each area's own persons),
-- for each of the nine counts (total, three grades, five categories; the categories overlap, so
-- among them only the hierarchy holds). A count of 1..k-1 (k = privacy_config.min_count) is
-- withheld (primary). An area's own persons are never shown; a count of them that is not small
-- is taken as known (it is the difference of shown counts), a small one as withheld.
-- A relation is broken when
--   exactly one of its cells is withheld (that cell is the difference of the others), or
--   its parent is shown and its withheld children add up to 1..k-1 (that small group is the
--   difference).
-- Each broken relation withholds one more of its cells (a complement): the smallest child that
-- brings the withheld sum to k, else the largest child, else the parent; an area's own persons
-- may be a complement, and are then withheld in their own relations too. This repeats until no
-- relation is broken. Zero is shown: it reveals nobody, and a withheld zero would protect nothing.
-- The pattern is computed over the whole district for every caller, so two callers who see
-- different areas cannot combine different patterns. It is stored (person_counts_pattern) and
-- rewritten whenever persons change; its cost, measured: docs/security.md.
--
-- This is the usual heuristic of statistical offices (one complement per broken relation,
-- repeated to a fixed point), not an optimal or an exact interval audit: docs/security.md says
-- what it guarantees and what it does not.

DROP VIEW pingan.persons_by_village;
DROP VIEW pingan.persons_by_grid;
DROP VIEW pingan.persons_by_area;
DROP VIEW pingan.person_counts_by_area;

-- One row per area (grid, village or town) with its raw counts; owner only.
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
GROUP BY v.code, v.name, v.town_code, v.geom
UNION ALL
SELECT 'town', t.code, t.name, t.code, NULL, t.geom,
       coalesce(sum(c.total), 0)::bigint, coalesce(sum(c.grade_red), 0)::bigint, coalesce(sum(c.grade_yellow), 0)::bigint,
       coalesce(sum(c.grade_green), 0)::bigint, coalesce(sum(c.career_failure), 0)::bigint,
       coalesce(sum(c.family_discord), 0)::bigint, coalesce(sum(c.life_frustration), 0)::bigint,
       coalesce(sum(c.mental_imbalance), 0)::bigint, coalesce(sum(c.abnormal_behaviour), 0)::bigint
FROM pingan.towns t
LEFT JOIN pingan.person_counts c ON c.town_code = t.code
GROUP BY t.code, t.name, t.geom;

-- The counts to withhold: (level, code, count) of every withheld cell of a served area.
CREATE FUNCTION pingan.person_counts_withheld()
RETURNS TABLE (area_level text, area_code text, count_name text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k integer;
    c_level text[]; c_code text[]; c_up text[]; c_name text[]; c_n integer[]; c_own boolean[];
    c_hid boolean[];
    m_rel integer[]; m_cell integer[]; m_parent boolean[];
    picks integer[];
    n_broken bigint;
    i integer;
    rounds integer := 0;
BEGIN
    SELECT p.min_count INTO k FROM pingan.privacy_config p;
    -- The cells: every non-zero count of every area and of every area's own persons. `up` is the
    -- code of the area the cell adds up into (grid and village-own: the village; village and
    -- town-own: the town).
    WITH p AS (
        SELECT c.grid_code, c.village_code, c.town_code, n.name, n.n
        FROM pingan.person_counts c
        CROSS JOIN LATERAL (VALUES ('total', c.total), ('grade_red', c.grade_red),
            ('grade_yellow', c.grade_yellow), ('grade_green', c.grade_green),
            ('career_failure', c.career_failure), ('family_discord', c.family_discord),
            ('life_frustration', c.life_frustration), ('mental_imbalance', c.mental_imbalance),
            ('abnormal_behaviour', c.abnormal_behaviour)) n(name, n)
        WHERE n.n > 0),
    g AS (
        SELECT p.name, p.grid_code, p.village_code, p.town_code, sum(p.n)::integer AS n,
               GROUPING(p.grid_code, p.village_code) AS gs
        FROM p GROUP BY GROUPING SETS ((p.name, p.grid_code, p.village_code, p.town_code),
                                       (p.name, p.village_code, p.town_code), (p.name, p.town_code))),
    cells AS (
        SELECT CASE WHEN g.grid_code IS NOT NULL THEN 'grid'
                    WHEN g.village_code IS NOT NULL THEN 'village_own' ELSE 'town_own' END AS level,
               coalesce(g.grid_code, g.village_code, g.town_code) AS code,
               CASE WHEN g.village_code IS NOT NULL THEN g.village_code ELSE g.town_code END AS up,
               g.name, g.n
        FROM g WHERE g.gs = 0
        UNION ALL
        SELECT 'village', g.village_code, g.town_code, g.name, g.n FROM g WHERE g.gs = 2 AND g.village_code IS NOT NULL
        UNION ALL
        SELECT 'town', g.town_code, NULL, g.name, g.n FROM g WHERE g.gs = 3),
    o AS (SELECT c.*, row_number() OVER (ORDER BY c.level, c.code, c.name) AS o FROM cells c)
    SELECT array_agg(c.level ORDER BY c.o), array_agg(c.code ORDER BY c.o), array_agg(c.up ORDER BY c.o),
           array_agg(c.name ORDER BY c.o), array_agg(c.n ORDER BY c.o),
           array_agg(c.level LIKE '%\_own' ORDER BY c.o), array_agg(c.n BETWEEN 1 AND k - 1 ORDER BY c.o)
    INTO c_level, c_code, c_up, c_name, c_n, c_own, c_hid
    FROM o c;
    IF c_n IS NULL THEN
        RETURN;
    END IF;

    -- The relations, as memberships (relation, cell, is it the relation's parent).
    WITH c AS (SELECT * FROM unnest(c_level, c_code, c_up, c_name) WITH ORDINALITY AS c(level, code, up, name, id)),
    m AS (
        SELECT c.id, false AS parent, 'h:' || c.name || ':' || c.up AS rel FROM c WHERE c.up IS NOT NULL
        UNION ALL
        SELECT c.id, true, 'h:' || c.name || ':' || c.code FROM c WHERE c.level IN ('village', 'town')
        UNION ALL
        SELECT c.id, c.name = 'total', 'g:' || c.level || ':' || c.code FROM c
        WHERE c.name IN ('total', 'grade_red', 'grade_yellow', 'grade_green')),
    r AS (SELECT dense_rank() OVER (ORDER BY m.rel)::integer AS rel, m.id::integer AS id, m.parent FROM m)
    SELECT array_agg(r.rel ORDER BY r.rel, r.id), array_agg(r.id ORDER BY r.rel, r.id),
           array_agg(r.parent ORDER BY r.rel, r.id)
    INTO m_rel, m_cell, m_parent
    FROM r;

    LOOP
        WITH m AS (
            SELECT t.rel, t.id, t.parent, c_n[t.id] AS n, c_hid[t.id] AS hid, c_own[t.id] AS own
            FROM unnest(m_rel, m_cell, m_parent) AS t(rel, id, parent)),
        s AS (
            SELECT m.rel, count(*) FILTER (WHERE m.hid) AS n_hid, bool_or(m.hid AND m.parent) AS parent_hid,
                   coalesce(sum(m.n) FILTER (WHERE m.hid AND NOT m.parent), 0) AS hid_sum,
                   max(m.n) FILTER (WHERE m.parent) AS parent_n
            FROM m GROUP BY m.rel),
        broken AS (
            SELECT s.rel, s.hid_sum, s.parent_hid FROM s
            WHERE s.n_hid = 1 OR (NOT s.parent_hid AND s.hid_sum BETWEEN 1 AND k - 1)),
        pick AS (
            SELECT DISTINCT ON (b.rel) m.id
            FROM broken b JOIN m ON m.rel = b.rel
            WHERE NOT m.hid
            ORDER BY b.rel, m.parent,
                     (b.parent_hid OR b.hid_sum + m.n >= k) DESC,
                     CASE WHEN b.parent_hid OR b.hid_sum + m.n >= k THEN m.n ELSE -m.n END, m.id)
        SELECT (SELECT count(*) FROM broken), (SELECT array_agg(DISTINCT pick.id) FROM pick)
        INTO n_broken, picks;
        EXIT WHEN n_broken = 0;
        IF picks IS NULL THEN  -- cannot happen: a broken relation always has a shown non-zero cell
            RAISE EXCEPTION 'person_counts_withheld: % relations broken and no cell to withhold', n_broken;
        END IF;
        FOREACH i IN ARRAY picks LOOP
            c_hid[i] := true;
        END LOOP;
        rounds := rounds + 1;
        IF rounds > cardinality(c_n) THEN  -- each round withholds one more cell at least
            RAISE EXCEPTION 'person_counts_withheld: no fixed point after % rounds', rounds;
        END IF;
    END LOOP;

    RETURN QUERY
    SELECT t.level, t.code, t.name FROM unnest(c_level, c_code, c_name, c_hid) AS t(level, code, name, hid)
    WHERE t.hid AND t.level IN ('grid', 'village', 'town');
END
$$;
REVOKE ALL ON FUNCTION pingan.person_counts_withheld() FROM PUBLIC;

-- The pattern, stored: computing it takes 40-140 ms (docs/security.md), and the count views are
-- read far more often (every tile, every page of items) than persons change. Rewritten in the
-- transaction that changes persons (or the threshold), by a statement trigger, so readers never
-- see counts and a pattern of different data. Concurrent writers queue on an advisory lock and
-- each computes from what is committed plus its own change. Owner only.
CREATE TABLE pingan.person_counts_pattern (
    level text NOT NULL CHECK (level IN ('grid', 'village', 'town')),
    code  text NOT NULL,
    names text[] NOT NULL CHECK (cardinality(names) >= 1),
    PRIMARY KEY (level, code)
);

CREATE FUNCTION pingan.person_counts_repattern() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(72028, 0);
    DELETE FROM pingan.person_counts_pattern;
    INSERT INTO pingan.person_counts_pattern (level, code, names)
    SELECT w.area_level, w.area_code, array_agg(w.count_name ORDER BY w.count_name)
    FROM pingan.person_counts_withheld() w GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION pingan.person_counts_repattern() FROM PUBLIC;
CREATE TRIGGER persons_repattern
    AFTER INSERT OR DELETE OR UPDATE OF grid_code, village_code, town_code, grade, categories, status
    ON pingan.persons FOR EACH STATEMENT EXECUTE FUNCTION pingan.person_counts_repattern();
CREATE TRIGGER persons_repattern_truncate AFTER TRUNCATE ON pingan.persons
    FOR EACH STATEMENT EXECUTE FUNCTION pingan.person_counts_repattern();
CREATE TRIGGER privacy_config_repattern AFTER UPDATE ON pingan.privacy_config
    FOR EACH STATEMENT EXECUTE FUNCTION pingan.person_counts_repattern();
-- the first pattern, of the persons already loaded: written by the threshold's trigger
UPDATE pingan.privacy_config SET min_count = min_count;

-- May the caller see the counts of this area? District-wide roles everything; a town user its
-- town; a grid user its grids only. (0005 gave a grid user its villages too; but a grid worker
-- knows its own grid's persons, withheld or not, and a village of 5 shown with two grids of 3 and
-- 2 withheld gives the other grid's 2 to the worker of the first: the pattern protects against
-- what the shown counts give, not against what a caller knows besides.)
CREATE OR REPLACE FUNCTION pingan.ctx_sees_area(level text, code text, town text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT CASE pingan.ctx_role()
        WHEN 'town' THEN town = ANY (pingan.ctx_areas())
        WHEN 'grid' THEN level = 'grid' AND code = ANY (pingan.ctx_areas())
        ELSE coalesce(pingan.ctx_role() IN ('admin', 'command', 'system', 'analyst', 'public'), false)
    END
$$;

CREATE VIEW pingan.persons_by_area WITH (security_barrier) AS
SELECT a.level, a.code, a.name, a.town_code, a.village_code,
       CASE WHEN 'total' = ANY (w.names) THEN NULL ELSE a.total END AS total,
       CASE WHEN 'grade_red' = ANY (w.names) THEN NULL ELSE a.grade_red END AS grade_red,
       CASE WHEN 'grade_yellow' = ANY (w.names) THEN NULL ELSE a.grade_yellow END AS grade_yellow,
       CASE WHEN 'grade_green' = ANY (w.names) THEN NULL ELSE a.grade_green END AS grade_green,
       CASE WHEN 'career_failure' = ANY (w.names) THEN NULL ELSE a.career_failure END AS career_failure,
       CASE WHEN 'family_discord' = ANY (w.names) THEN NULL ELSE a.family_discord END AS family_discord,
       CASE WHEN 'life_frustration' = ANY (w.names) THEN NULL ELSE a.life_frustration END AS life_frustration,
       CASE WHEN 'mental_imbalance' = ANY (w.names) THEN NULL ELSE a.mental_imbalance END AS mental_imbalance,
       CASE WHEN 'abnormal_behaviour' = ANY (w.names) THEN NULL ELSE a.abnormal_behaviour END AS abnormal_behaviour,
       w.names IS NOT NULL AS suppressed,
       a.geom
FROM pingan.person_counts_by_area a
LEFT JOIN pingan.person_counts_pattern w ON w.level = a.level AND w.code = a.code
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

CREATE VIEW pingan.persons_by_town WITH (security_barrier) AS
SELECT code, name, total, grade_red, grade_yellow, grade_green,
       career_failure, family_discord, life_frustration, mental_imbalance, abnormal_behaviour,
       suppressed, geom::geometry(MultiPolygon, 4490) AS geom
FROM pingan.persons_by_area WHERE level = 'town';

GRANT SELECT ON pingan.persons_by_grid, pingan.persons_by_village, pingan.persons_by_town
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_public, pingan_as_system;

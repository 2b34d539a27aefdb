-- The index stored one row per month and level (issue 6: 30,000 villages x 60 months in < 10 s).
--
-- A computation always replaces whole months of the whole district (ranks and classes are
-- relative to the month's places), and 1.8 million rows of the old one-row-per-place table took
-- 20-40 s to write on two cores (measured: COPY into index_scores with its three indexes and
-- the contributions, 86-115k rows/s). A month is now one row per level whose arrays hold every
-- place in the order of `codes`: 60 months of 30,000 villages are 60 rows, written in ~3 s.
--
-- pingan.index_scores stays as the view of one row per place and month (same columns as before
-- except `contributions`, which pingan.index_contributions(period, level, code) builds for one
-- place, and `notes`, the month's). The published views index_villages / index_towns are
-- rebuilt on it unchanged. Also: one trigger function renews layer versions for both the index
-- and the patrol plans (it was two identical functions).

CREATE TABLE pingan.index_months (
    period        date NOT NULL CHECK (extract(day FROM period) = 1),
    level         text NOT NULL CHECK (level IN ('village', 'town')),
    model_id      bigint NOT NULL REFERENCES pingan.index_models (id),
    -- the month's model facts: class k (0 = red .. 4 = green) is class_keys[k+1] drawn
    -- class_hex[k+1]; indicator i has effective weight weights[i] (NaN: skipped, no data);
    -- veto j fired where bit j-1 of veto_mask is set and reads veto_reasons[j]
    class_keys    text[] NOT NULL CHECK (cardinality(class_keys) = 5),
    class_hex     text[] NOT NULL CHECK (cardinality(class_hex) = 5),
    indicators    text[] NOT NULL,
    weights       float8[] NOT NULL,
    veto_reasons  text[] NOT NULL DEFAULT '{}' CHECK (cardinality(veto_reasons) <= 31),
    notes         text[] NOT NULL DEFAULT '{}',
    -- one element per place, in the order of codes (ascending)
    codes         text[] NOT NULL,
    town_codes    text[] NOT NULL,
    score_x100    integer[] NOT NULL,   -- score in hundredths: 100.00 is 10000
    class         smallint[] NOT NULL,
    rank          integer[] NOT NULL,   -- 1 = highest score of the level
    rank_change   integer[] NOT NULL,   -- previous rank minus rank; NULL element: none
    change_x100   integer[] NOT NULL,   -- score minus last month's, hundredths; NULL: none
    veto_mask     integer[] NOT NULL,
    -- [indicator][place]: the indicator's value (per capita / ratio / change) and its risk in
    -- [0, 1]; points deducted = 100 x weight x risk
    value         real[] NOT NULL,
    risk          real[] NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, level),
    CHECK (cardinality(weights) = cardinality(indicators)),
    CHECK (cardinality(town_codes) = cardinality(codes) AND cardinality(score_x100) = cardinality(codes)
           AND cardinality(class) = cardinality(codes) AND cardinality(rank) = cardinality(codes)
           AND cardinality(rank_change) = cardinality(codes) AND cardinality(change_x100) = cardinality(codes)
           AND cardinality(veto_mask) = cardinality(codes)),
    CHECK (cardinality(value) = cardinality(indicators) * cardinality(codes)
           AND cardinality(risk) = cardinality(value))
);
-- large arrays uncompressed: pglz costs more time than the space it saves on these floats
ALTER TABLE pingan.index_months ALTER COLUMN value SET STORAGE EXTERNAL,
    ALTER COLUMN risk SET STORAGE EXTERNAL, ALTER COLUMN codes SET STORAGE EXTERNAL,
    ALTER COLUMN town_codes SET STORAGE EXTERNAL, ALTER COLUMN score_x100 SET STORAGE EXTERNAL,
    ALTER COLUMN rank SET STORAGE EXTERNAL, ALTER COLUMN rank_change SET STORAGE EXTERNAL,
    ALTER COLUMN change_x100 SET STORAGE EXTERNAL, ALTER COLUMN veto_mask SET STORAGE EXTERNAL;

CREATE FUNCTION pingan.index_round(x double precision, digits integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x IS NULL OR x = 'NaN' THEN NULL ELSE round(x::numeric, digits) END
$$;

-- The stored scores, as they were until 0015 (minus contributions): one row per place and month.
-- Then the month of the old table, in the new store (a 2-D [indicator][place] array per month).
WITH places AS (
    SELECT s.*, row_number() OVER (PARTITION BY s.period, s.level ORDER BY s.code) AS n
    FROM pingan.index_scores s
), months AS (
    SELECT period, level, min(model_id) AS model_id,
        -- every indicator key of the month, from its first place (all places have the same keys)
        (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(
            (SELECT contributions FROM places p2 WHERE (p2.period, p2.level) = (p.period, p.level) AND p2.n = 1)) k)
            AS indicators,
        (SELECT array_agg(DISTINCT r ORDER BY r) FROM places p3, unnest(p3.veto_reasons) r
         WHERE (p3.period, p3.level) = (p.period, p.level)) AS reasons,
        (SELECT notes FROM places p4 WHERE (p4.period, p4.level) = (p.period, p.level) AND p4.n = 1) AS notes,
        array_agg(code ORDER BY code) AS codes, array_agg(town_code ORDER BY code) AS town_codes,
        array_agg((score * 100)::integer ORDER BY code) AS score_x100,
        array_agg((array_position(ARRAY['red', 'orange', 'yellow', 'blue', 'green'], class) - 1)::smallint
                  ORDER BY code) AS class,
        array_agg(rank ORDER BY code) AS rank, array_agg(rank_change ORDER BY code) AS rank_change,
        array_agg((change * 100)::integer ORDER BY code) AS change_x100,
        max(computed_at) AS computed_at
    FROM places p GROUP BY period, level
)
INSERT INTO pingan.index_months (period, level, model_id, class_keys, class_hex, indicators, weights,
    veto_reasons, notes, codes, town_codes, score_x100, class, rank, rank_change, change_x100, veto_mask,
    value, risk, computed_at)
SELECT m.period, m.level, m.model_id, ARRAY['red', 'orange', 'yellow', 'blue', 'green'],
    ARRAY['#d7191c', '#fd8d3c', '#fecc5c', '#2c7bb6', '#1a9641'],  -- as gis.index.classify.COLOURS
    coalesce(m.indicators, '{}'),
    coalesce((SELECT array_agg(coalesce((c.contributions -> k ->> 'weight')::float8, 'NaN') ORDER BY k)
              FROM places c, unnest(m.indicators) k
              WHERE (c.period, c.level) = (m.period, m.level) AND c.n = 1), '{}'),
    coalesce(m.reasons, '{}'), m.notes, m.codes, m.town_codes, m.score_x100, m.class, m.rank,
    m.rank_change, m.change_x100,
    (SELECT array_agg(coalesce((SELECT sum(1 << (i::integer - 1)) FROM unnest(m.reasons) WITH ORDINALITY r(r, i)
                                WHERE r = ANY (c.veto_reasons)), 0)::integer ORDER BY c.code)
     FROM places c WHERE (c.period, c.level) = (m.period, m.level)),
    coalesce((SELECT array_agg(row ORDER BY k) FROM (
        SELECT k, array_agg(coalesce((c.contributions -> k ->> 'value')::real, 'NaN') ORDER BY c.code) AS row
        FROM places c, unnest(m.indicators) k WHERE (c.period, c.level) = (m.period, m.level) GROUP BY k) x),
        '{}'),
    coalesce((SELECT array_agg(row ORDER BY k) FROM (
        SELECT k, array_agg(coalesce((c.contributions -> k ->> 'risk')::real, 'NaN') ORDER BY c.code) AS row
        FROM places c, unnest(m.indicators) k WHERE (c.period, c.level) = (m.period, m.level) GROUP BY k) x),
        '{}'),
    m.computed_at
FROM months m;

DROP VIEW pingan.index_villages, pingan.index_towns;
DROP TABLE pingan.index_scores;  -- its statement trigger (0015) goes with it

CREATE VIEW pingan.index_scores AS
SELECT m.period, m.level, u.code, u.town_code, m.model_id,
       (u.score_x100 / 100.0)::numeric(5, 2) AS score, m.class_keys[u.class + 1] AS class,
       m.class_hex[u.class + 1] AS colour_hex, u.rank, u.rank_change,
       (u.change_x100 / 100.0)::numeric(6, 2) AS change, u.veto_mask <> 0 AS veto,
       ARRAY(SELECT r FROM unnest(m.veto_reasons) WITH ORDINALITY AS v(r, i)
             WHERE u.veto_mask & (1 << (v.i::integer - 1)) <> 0 ORDER BY v.i) AS veto_reasons,
       m.notes, m.computed_at
FROM pingan.index_months m,
     unnest(m.codes, m.town_codes, m.score_x100, m.class, m.rank, m.rank_change, m.change_x100, m.veto_mask)
         AS u(code, town_code, score_x100, class, rank, rank_change, change_x100, veto_mask);

-- Each indicator's part in one place's score of a month: {indicator: {value, risk, weight,
-- deduction} | {skipped: true}} (NULL: no such place or month). Runs with the caller's rights.
CREATE FUNCTION pingan.index_contributions(p_period date, p_level text, p_code text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_object_agg(u.id, CASE WHEN u.w = 'NaN' THEN jsonb_build_object('skipped', true)
        ELSE jsonb_build_object('value', pingan.index_round(u.v, 6), 'risk', pingan.index_round(u.r, 6),
                                'weight', pingan.index_round(u.w, 6),
                                'deduction', pingan.index_round(100 * u.w * u.r, 4)) END)
    FROM pingan.index_months m
    CROSS JOIN LATERAL (SELECT array_position(m.codes, p_code) AS n) p
    CROSS JOIN LATERAL unnest(m.indicators, m.weights,
        m.value[1:cardinality(m.indicators)][p.n:p.n], m.risk[1:cardinality(m.indicators)][p.n:p.n])
        AS u(id, w, v, r)
    WHERE m.period = p_period AND m.level = p_level AND p.n IS NOT NULL
$$;

CREATE VIEW pingan.index_villages AS
SELECT s.code || ':' || to_char(s.period, 'YYYY-MM') AS id, s.period, s.code, v.name, s.town_code,
       s.score::double precision AS score, s.class, pingan.index_colour_zh(s.class) AS colour_zh,
       s.class AS colour_en, s.colour_hex, s.rank, s.rank_change, s.change::double precision AS change,
       s.veto, v.geom
FROM pingan.index_scores s JOIN pingan.villages v ON v.code = s.code
WHERE s.level = 'village';

CREATE VIEW pingan.index_towns AS
SELECT s.code || ':' || to_char(s.period, 'YYYY-MM') AS id, s.period, s.code, t.name, s.town_code,
       s.score::double precision AS score, s.class, pingan.index_colour_zh(s.class) AS colour_zh,
       s.class AS colour_en, s.colour_hex, s.rank, s.rank_change, s.change::double precision AS change,
       s.veto, t.geom
FROM pingan.index_scores s JOIN pingan.towns t ON t.code = s.code
WHERE s.level = 'town';

-- The index counts severe hazards overdue each month: read through this index, the query costs
-- what the severe hazards number, not all hazards (11M at 30,000 villages).
CREATE INDEX hazards_severe_idx ON pingan.hazards (village_code) WHERE level = 'severe';

-- Tile caches key on layer versions, which the service may not write. One trigger function,
-- with the owner's rights, renews the versions of the layers a table feeds (its arguments); it
-- replaces patrol_layers_changed (0013) and index_layers_changed (0015), which were the same.
CREATE FUNCTION pingan.renew_layer_versions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pingan.layer_versions (layer_id) SELECT unnest(TG_ARGV)
    ON CONFLICT (layer_id) DO UPDATE SET version = pingan.layer_versions.version + 1, changed_at = now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION pingan.renew_layer_versions() FROM PUBLIC;
CREATE TRIGGER index_months_layers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON pingan.index_months FOR EACH STATEMENT
    EXECUTE FUNCTION pingan.renew_layer_versions('index-villages', 'index-towns');
DROP FUNCTION pingan.index_layers_changed();  -- its trigger went with the old table
DROP TRIGGER patrol_plans_layers_changed ON pingan.patrol_plans;
CREATE TRIGGER patrol_plans_layers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON pingan.patrol_plans FOR EACH STATEMENT
    EXECUTE FUNCTION pingan.renew_layer_versions('patrol-routes', 'patrol-stops');
DROP FUNCTION pingan.patrol_layers_changed();

GRANT SELECT ON pingan.index_villages, pingan.index_towns
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_public, pingan_as_system;
GRANT SELECT ON pingan.index_months, pingan.index_scores
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;
GRANT INSERT, DELETE ON pingan.index_months TO pingan_as_admin, pingan_as_command;

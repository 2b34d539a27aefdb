-- Back to one row per place and month (0007's table, 0015's grants and trigger), months kept.
CREATE TABLE pingan.index_scores_old (
    period         date NOT NULL CHECK (extract(day FROM period) = 1),
    level          text NOT NULL CHECK (level IN ('village', 'town')),
    code           text NOT NULL,
    town_code      text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    model_id       bigint NOT NULL REFERENCES pingan.index_models (id),
    score          numeric(5, 2) NOT NULL CHECK (score BETWEEN 0 AND 100),
    class          text NOT NULL CHECK (class IN ('red', 'orange', 'yellow', 'blue', 'green')),
    colour_hex     text NOT NULL CHECK (colour_hex ~ '^#[0-9a-f]{6}$'),
    rank           integer NOT NULL CHECK (rank >= 1),
    rank_change    integer,
    change         numeric(6, 2),
    veto           boolean NOT NULL DEFAULT false,
    veto_reasons   text[] NOT NULL DEFAULT '{}',
    contributions  jsonb NOT NULL,
    notes          text[] NOT NULL DEFAULT '{}',
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, level, code),
    CHECK (veto = (cardinality(veto_reasons) > 0)),
    CHECK (left(code, 9) = town_code)
);
INSERT INTO pingan.index_scores_old
SELECT s.period, s.level, s.code, s.town_code, s.model_id, s.score, s.class, s.colour_hex, s.rank,
       s.rank_change, s.change, s.veto, s.veto_reasons,
       coalesce(pingan.index_contributions(s.period, s.level, s.code), '{}'), s.notes, s.computed_at
FROM pingan.index_scores s;

DROP VIEW pingan.index_villages, pingan.index_towns, pingan.index_scores;
DROP FUNCTION pingan.index_contributions(date, text, text);
DROP FUNCTION pingan.index_round(double precision, integer);
DROP TABLE pingan.index_months;  -- with its trigger
ALTER TABLE pingan.index_scores_old RENAME TO index_scores;
ALTER TABLE pingan.index_scores RENAME CONSTRAINT index_scores_old_pkey TO index_scores_pkey;
CREATE INDEX index_scores_code_idx ON pingan.index_scores (level, code, period);
CREATE INDEX index_scores_town_idx ON pingan.index_scores (town_code, period);
CREATE FUNCTION pingan.index_layers_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pingan.layer_versions (layer_id) VALUES ('index-villages'), ('index-towns')
    ON CONFLICT (layer_id) DO UPDATE SET version = pingan.layer_versions.version + 1, changed_at = now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION pingan.index_layers_changed() FROM PUBLIC;
CREATE TRIGGER index_scores_layers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON pingan.index_scores FOR EACH STATEMENT EXECUTE FUNCTION pingan.index_layers_changed();
CREATE FUNCTION pingan.patrol_layers_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pingan.layer_versions (layer_id) VALUES ('patrol-routes'), ('patrol-stops')
    ON CONFLICT (layer_id) DO UPDATE SET version = pingan.layer_versions.version + 1, changed_at = now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION pingan.patrol_layers_changed() FROM PUBLIC;
DROP TRIGGER patrol_plans_layers_changed ON pingan.patrol_plans;
CREATE TRIGGER patrol_plans_layers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON pingan.patrol_plans FOR EACH STATEMENT EXECUTE FUNCTION pingan.patrol_layers_changed();

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

GRANT SELECT ON pingan.index_villages, pingan.index_towns
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_public, pingan_as_system;
GRANT SELECT ON pingan.index_scores
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;
GRANT INSERT, DELETE ON pingan.index_scores TO pingan_as_admin, pingan_as_command;
DROP FUNCTION pingan.renew_layer_versions();
DROP INDEX pingan.hazards_severe_idx;

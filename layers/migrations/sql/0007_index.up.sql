-- The safety governance index (issue 6): models, monthly scores, the accountability ladder,
-- star-level safe villages, and the public survey's results as an optional input.
--
-- Written only by the owner (`pingan index compute`, layers/index.py); the service side reads.
-- Who reads what (tests/layers/test_access.py SELECT_MATRIX):
--   index_villages, index_towns, index_star_villages (views), index_stars   every level, public too:
--       the published index is score, class, colour, rank and change, nothing else
--   index_scores (with each indicator's contribution), index_models, index_survey   places (not public)
--   index_warnings, index_warning_events (the ladder)   staff; town and grid users by jurisdiction

-- A model as it was used: the TOML text, kept so every stored score can be explained.
CREATE TABLE pingan.index_models (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (name <> ''),
    version     text NOT NULL CHECK (version <> ''),
    sha256      text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    toml        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per place and month. score: 100 is safest; class: the colour after vetoes; rank 1 is
-- the highest score of the level; change and rank_change against the month before (NULL: none);
-- contributions: per indicator raw value, value, risk, weight, points deducted.
CREATE TABLE pingan.index_scores (
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
CREATE INDEX index_scores_code_idx ON pingan.index_scores (level, code, period);
CREATE INDEX index_scores_town_idx ON pingan.index_scores (town_code, period);

-- The public survey (知晓率 / 参与率 / 满意度, percent), loaded by ETL when there is one.
CREATE TABLE pingan.index_survey (
    period         date NOT NULL CHECK (extract(day FROM period) = 1),
    level          text NOT NULL CHECK (level IN ('village', 'town')),
    code           text NOT NULL,
    respondents    integer NOT NULL CHECK (respondents > 0),
    awareness      real CHECK (awareness BETWEEN 0 AND 100),
    participation  real CHECK (participation BETWEEN 0 AND 100),
    satisfaction   real CHECK (satisfaction BETWEEN 0 AND 100),
    batch_id       bigint REFERENCES pingan.etl_batches (id),
    PRIMARY KEY (period, level, code)
);

-- The accountability ladder: one row per item, from its warning to its de-listing.
-- step 1 预警 warning, 2 抄告 notice, 3 督办 supervision, 4 挂牌 listing. owner and deadline
-- follow the step; evidence and document are for people (kept when the ladder is rebuilt).
CREATE TABLE pingan.index_warnings (
    id          bigserial PRIMARY KEY,
    level       text NOT NULL CHECK (level IN ('village', 'town')),
    code        text NOT NULL,
    town_code   text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    opened      date NOT NULL CHECK (extract(day FROM opened) = 1),
    step        smallint NOT NULL CHECK (step BETWEEN 1 AND 4),
    step_since  date NOT NULL CHECK (step_since >= opened),
    status      text NOT NULL CHECK (status IN ('open', 'closed')),
    closed      date CHECK (closed >= step_since),
    owner       text NOT NULL,
    deadline    date NOT NULL,
    evidence    text,
    document    text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (level, code, opened),
    CHECK ((status = 'closed') = (closed IS NOT NULL)),
    CHECK (left(code, 9) = town_code)
);
CREATE INDEX index_warnings_town_idx ON pingan.index_warnings (town_code, status);

CREATE TABLE pingan.index_warning_events (
    id          bigserial PRIMARY KEY,
    warning_id  bigint NOT NULL REFERENCES pingan.index_warnings (id) ON DELETE CASCADE,
    period      date NOT NULL CHECK (extract(day FROM period) = 1),
    from_step   smallint NOT NULL CHECK (from_step BETWEEN 0 AND 4),
    to_step     smallint NOT NULL CHECK (to_step BETWEEN 0 AND 4),
    reason      text NOT NULL CHECK (reason <> '')
);
CREATE INDEX index_warning_events_warning_idx ON pingan.index_warning_events (warning_id, period);

-- Star-level safe villages, per year: percent of the rated points, stars, the scorecard.
CREATE TABLE pingan.index_stars (
    year          smallint NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    village_code  text NOT NULL REFERENCES pingan.villages (code) ON UPDATE CASCADE,
    town_code     text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    model_id      bigint NOT NULL REFERENCES pingan.index_models (id),
    percent       numeric(5, 2) NOT NULL CHECK (percent BETWEEN 0 AND 100),
    stars         smallint NOT NULL CHECK (stars BETWEEN 0 AND 5),
    veto          boolean NOT NULL DEFAULT false,
    card          jsonb NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (year, village_code),
    CHECK (left(village_code, 9) = town_code),
    CHECK (NOT veto OR stars = 0)
);

-- --------------------------------------------------------------------------------------------
-- The published index, as the collections index-villages / index-towns and the map serve it.
CREATE FUNCTION pingan.index_colour_zh(class text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE class WHEN 'red' THEN '红' WHEN 'orange' THEN '橙' WHEN 'yellow' THEN '黄'
                      WHEN 'blue' THEN '蓝' WHEN 'green' THEN '绿' END
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

CREATE VIEW pingan.index_star_villages AS
SELECT s.village_code || ':' || s.year AS id, s.year, s.village_code AS code, v.name, s.town_code,
       s.stars, s.percent::double precision AS percent, s.veto, v.geom
FROM pingan.index_stars s JOIN pingan.villages v ON v.code = s.village_code;

-- --------------------------------------------------------------------------------------------
-- The ladder by jurisdiction: district-wide roles everything, a town its town, a grid user the
-- items of the villages its grids lie in. Events follow their item.
ALTER TABLE pingan.index_warnings ENABLE ROW LEVEL SECURITY;
CREATE POLICY index_warnings_district ON pingan.index_warnings
    TO pingan_as_admin, pingan_as_command, pingan_as_system USING (true);
CREATE POLICY index_warnings_town ON pingan.index_warnings TO pingan_as_town
    USING (town_code = ANY (pingan.ctx_areas()));
CREATE POLICY index_warnings_grid ON pingan.index_warnings TO pingan_as_grid
    USING (level = 'village' AND code IN (SELECT left(a, 12) FROM unnest(pingan.ctx_areas()) a));
ALTER TABLE pingan.index_warning_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY index_warning_events_parent ON pingan.index_warning_events
    USING (EXISTS (SELECT 1 FROM pingan.index_warnings w WHERE w.id = warning_id));

GRANT SELECT ON pingan.index_villages, pingan.index_towns, pingan.index_star_villages, pingan.index_stars
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_public, pingan_as_system;
GRANT SELECT ON pingan.index_scores, pingan.index_models, pingan.index_survey
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;
GRANT SELECT ON pingan.index_warnings, pingan.index_warning_events
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_system;

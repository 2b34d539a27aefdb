-- Pingan Map foundation schema.
--
-- Everything lives in schema "pingan". Geometries are EPSG:4490 (CGCS2000), valid, and
-- GiST-indexed. Administrative units are keyed by their national statistical codes; a child's
-- code starts with its parent's, which the CHECKs below enforce so that a record's grid, village
-- and town can never disagree. Workflow states are closed sets; changes of state must follow
-- pingan.workflow_transitions (enforced by trigger), while an INSERT may carry any legal state so
-- that ETL can import records that are already far along their workflow.

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS pingan;

-- ---------------------------------------------------------------------------------------------
-- ETL provenance
CREATE TABLE pingan.etl_batches (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL CHECK (source <> ''),
    layer        text NOT NULL CHECK (layer <> ''),
    file_name    text,
    file_hash    text,
    params       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    n_read       integer NOT NULL DEFAULT 0 CHECK (n_read >= 0),
    n_loaded     integer NOT NULL DEFAULT 0 CHECK (n_loaded >= 0),
    n_updated    integer NOT NULL DEFAULT 0 CHECK (n_updated >= 0),
    n_unchanged  integer NOT NULL DEFAULT 0 CHECK (n_unchanged >= 0),
    n_rejected   integer NOT NULL DEFAULT 0 CHECK (n_rejected >= 0),
    error        text,
    CHECK (status = 'running' OR finished_at IS NOT NULL),
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX etl_batches_source_idx ON pingan.etl_batches (source, layer, started_at);

CREATE TABLE pingan.etl_rejects (
    id           bigserial PRIMARY KEY,
    batch_id     bigint NOT NULL REFERENCES pingan.etl_batches (id) ON DELETE CASCADE,
    row_number   integer CHECK (row_number >= 0),
    column_name  text,
    reason       text NOT NULL CHECK (reason <> ''),
    raw          jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX etl_rejects_batch_idx ON pingan.etl_rejects (batch_id, row_number);

-- Each layer's data version; a refresh bumps it and tile caches key on it.
CREATE TABLE pingan.layer_versions (
    layer_id    text PRIMARY KEY CHECK (layer_id ~ '^[a-z][a-z0-9_-]*$'),
    version     bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- Administrative hierarchy: towns/streets (镇街) > villages/communities (村社) > grids (网格)
CREATE TABLE pingan.towns (
    code         text PRIMARY KEY CHECK (code ~ '^[0-9]{9}$'),
    county_code  text NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    name         text NOT NULL CHECK (name <> ''),
    kind         text NOT NULL CHECK (kind IN ('street', 'town', 'township')),
    population   integer NOT NULL CHECK (population >= 0),
    households   integer NOT NULL CHECK (households >= 0),
    geom         geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    source       text NOT NULL,
    source_id    text NOT NULL,
    batch_id     bigint REFERENCES pingan.etl_batches (id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id),
    UNIQUE (name, county_code),
    CONSTRAINT towns_in_county CHECK (left(code, 6) = county_code)
);
CREATE INDEX towns_geom_idx ON pingan.towns USING gist (geom);

CREATE TABLE pingan.villages (
    code         text PRIMARY KEY CHECK (code ~ '^[0-9]{12}$'),
    town_code    text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    name         text NOT NULL CHECK (name <> ''),
    kind         text NOT NULL CHECK (kind IN ('village', 'community')),
    population   integer NOT NULL CHECK (population >= 0),
    households   integer NOT NULL CHECK (households >= 0),
    geom         geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    source       text NOT NULL,
    source_id    text NOT NULL,
    batch_id     bigint REFERENCES pingan.etl_batches (id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id),
    CONSTRAINT villages_in_town CHECK (left(code, 9) = town_code)
);
CREATE INDEX villages_geom_idx ON pingan.villages USING gist (geom);
CREATE INDEX villages_town_idx ON pingan.villages (town_code);

-- Grid workers (网格员) belong to a village; a grid names its responsible worker.
CREATE TABLE pingan.grid_workers (
    id            bigserial PRIMARY KEY,
    code          text NOT NULL UNIQUE CHECK (code <> ''),
    name          text NOT NULL CHECK (name <> ''),
    phone         text CHECK (phone ~ '^[0-9+ -]{5,20}$'),
    role          text NOT NULL CHECK (role IN ('full_time', 'part_time', 'specialist')),
    village_code  text NOT NULL REFERENCES pingan.villages (code) ON UPDATE CASCADE,
    active        boolean NOT NULL DEFAULT true,
    source        text NOT NULL,
    source_id     text NOT NULL,
    batch_id      bigint REFERENCES pingan.etl_batches (id),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id)
);
CREATE INDEX grid_workers_village_idx ON pingan.grid_workers (village_code);

CREATE TABLE pingan.grids (
    code          text PRIMARY KEY CHECK (code ~ '^[0-9]{15}$'),
    village_code  text NOT NULL REFERENCES pingan.villages (code) ON UPDATE CASCADE,
    name          text NOT NULL CHECK (name <> ''),
    kind          text NOT NULL DEFAULT 'comprehensive' CHECK (kind IN ('comprehensive', 'specialised')),
    population    integer NOT NULL CHECK (population >= 0),
    households    integer NOT NULL CHECK (households >= 0),
    worker_id     bigint REFERENCES pingan.grid_workers (id) ON DELETE SET NULL,
    geom          geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    source        text NOT NULL,
    source_id     text NOT NULL,
    batch_id      bigint REFERENCES pingan.etl_batches (id),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id),
    CONSTRAINT grids_in_village CHECK (left(code, 12) = village_code)
);
CREATE INDEX grids_geom_idx ON pingan.grids USING gist (geom);
CREATE INDEX grids_village_idx ON pingan.grids (village_code);

CREATE TABLE pingan.patrol_teams (
    id           bigserial PRIMARY KEY,
    code         text NOT NULL UNIQUE CHECK (code <> ''),
    name         text NOT NULL CHECK (name <> ''),
    town_code    text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('police', 'auxiliary', 'volunteer', 'security')),
    members      integer NOT NULL CHECK (members > 0),
    travel_mode  text NOT NULL CHECK (travel_mode IN ('foot', 'bicycle', 'car')),
    shift_start  time NOT NULL,
    shift_end    time NOT NULL,
    depot        geometry(Point, 4490) NOT NULL CHECK (ST_IsValid(depot)),
    source       text NOT NULL,
    source_id    text NOT NULL,
    batch_id     bigint REFERENCES pingan.etl_batches (id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id)
);
CREATE INDEX patrol_teams_depot_idx ON pingan.patrol_teams USING gist (depot);

-- ---------------------------------------------------------------------------------------------
-- Located records share: the point, how it was placed, and the grid/village/town it falls in.
-- loc_method: 'coordinates' (given, converted from src_datum) or 'geocoded' (from an address,
-- with geocode_level and geocode_score).

CREATE TABLE pingan.key_sites (
    id             bigserial PRIMARY KEY,
    code           text NOT NULL UNIQUE CHECK (code <> ''),
    name           text NOT NULL CHECK (name <> ''),
    category       text NOT NULL CHECK (category IN (
                       'school', 'kindergarten', 'hospital', 'clinic', 'market', 'shopping_mall',
                       'rental_housing', 'hazardous_chemicals', 'gas_station', 'construction_site',
                       'elderly_home', 'entertainment', 'internet_cafe', 'hotel', 'transport_hub',
                       'religious_site', 'factory')),
    risk_level     text NOT NULL DEFAULT 'low' CHECK (risk_level IN ('high', 'medium', 'low')),
    capacity       integer CHECK (capacity >= 0),
    address        text,
    grid_code      text NOT NULL REFERENCES pingan.grids (code) ON UPDATE CASCADE,
    village_code   text NOT NULL REFERENCES pingan.villages (code) ON UPDATE CASCADE,
    town_code      text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    geom           geometry(Point, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    src_datum      text NOT NULL DEFAULT 'cgcs2000',
    loc_method     text NOT NULL DEFAULT 'coordinates' CHECK (loc_method IN ('coordinates', 'geocoded')),
    geocode_level  text CHECK (geocode_level IN ('door', 'village', 'town')),
    geocode_score  real CHECK (geocode_score BETWEEN 0 AND 1),
    source         text NOT NULL,
    source_id      text NOT NULL,
    batch_id       bigint REFERENCES pingan.etl_batches (id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id),
    CONSTRAINT key_sites_in_hierarchy CHECK (left(grid_code, 12) = village_code AND left(village_code, 9) = town_code),
    CONSTRAINT key_sites_geocode_level CHECK ((loc_method = 'geocoded') = (geocode_level IS NOT NULL))
);
CREATE INDEX key_sites_geom_idx ON pingan.key_sites USING gist (geom);
CREATE INDEX key_sites_grid_idx ON pingan.key_sites (grid_code);
CREATE INDEX key_sites_town_idx ON pingan.key_sites (town_code, category);

-- Five-loss persons (五失人员). Name, ID number and phone are encrypted by the application
-- (AES-GCM, key outside the database); id_number_hash is a keyed blind index (HMAC) so that one
-- person has one file without the database ever holding the clear ID number.
CREATE TABLE pingan.persons (
    id                     bigserial PRIMARY KEY,
    name_enc               bytea NOT NULL,
    id_number_enc          bytea NOT NULL,
    phone_enc              bytea,
    id_number_hash         bytea NOT NULL UNIQUE,
    gender                 text NOT NULL CHECK (gender IN ('M', 'F')),
    birth_year             smallint NOT NULL CHECK (birth_year BETWEEN 1900 AND 2100),
    categories             text[] NOT NULL CHECK (
                               cardinality(categories) >= 1
                               AND categories <@ ARRAY['career_failure', 'family_discord',
                                   'life_frustration', 'mental_imbalance', 'abnormal_behaviour']),
    grade                  text NOT NULL CHECK (grade IN ('red', 'yellow', 'green')),
    grade_since            timestamptz NOT NULL,
    status                 text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    closed_at              timestamptz,
    registered_at          timestamptz NOT NULL,
    responsible_worker_id  bigint REFERENCES pingan.grid_workers (id) ON DELETE SET NULL,
    address                text,
    grid_code              text NOT NULL REFERENCES pingan.grids (code) ON UPDATE CASCADE,
    village_code           text NOT NULL REFERENCES pingan.villages (code) ON UPDATE CASCADE,
    town_code              text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    geom                   geometry(Point, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    src_datum              text NOT NULL DEFAULT 'cgcs2000',
    loc_method             text NOT NULL DEFAULT 'coordinates' CHECK (loc_method IN ('coordinates', 'geocoded')),
    geocode_level          text CHECK (geocode_level IN ('door', 'village', 'town')),
    geocode_score          real CHECK (geocode_score BETWEEN 0 AND 1),
    source                 text NOT NULL,
    source_id              text NOT NULL,
    batch_id               bigint REFERENCES pingan.etl_batches (id),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id),
    CONSTRAINT persons_in_hierarchy CHECK (left(grid_code, 12) = village_code AND left(village_code, 9) = town_code),
    CONSTRAINT persons_geocode_level CHECK ((loc_method = 'geocoded') = (geocode_level IS NOT NULL)),
    CONSTRAINT persons_grade_since CHECK (grade_since >= registered_at),
    CONSTRAINT persons_closed CHECK ((status = 'closed') = (closed_at IS NOT NULL) AND closed_at >= registered_at)
);
CREATE INDEX persons_geom_idx ON pingan.persons USING gist (geom);
CREATE INDEX persons_grid_idx ON pingan.persons (grid_code);
CREATE INDEX persons_town_idx ON pingan.persons (town_code, grade);

CREATE TABLE pingan.person_grades (
    id              bigserial PRIMARY KEY,
    person_id       bigint NOT NULL REFERENCES pingan.persons (id) ON DELETE CASCADE,
    grade           text NOT NULL CHECK (grade IN ('red', 'yellow', 'green')),
    previous_grade  text CHECK (previous_grade IN ('red', 'yellow', 'green')),
    changed_at      timestamptz NOT NULL,
    reason          text,
    changed_by      text,
    batch_id        bigint REFERENCES pingan.etl_batches (id),
    CHECK (previous_grade IS DISTINCT FROM grade)
);
CREATE INDEX person_grades_person_idx ON pingan.person_grades (person_id, changed_at);

CREATE TABLE pingan.person_visits (
    id          bigserial PRIMARY KEY,
    person_id   bigint NOT NULL REFERENCES pingan.persons (id) ON DELETE CASCADE,
    worker_id   bigint REFERENCES pingan.grid_workers (id) ON DELETE SET NULL,
    visited_at  timestamptz NOT NULL,
    method      text NOT NULL CHECK (method IN ('home', 'phone', 'video', 'office')),
    finding     text,
    next_due    date,
    batch_id    bigint REFERENCES pingan.etl_batches (id)
);
CREATE INDEX person_visits_person_idx ON pingan.person_visits (person_id, visited_at);

-- ---------------------------------------------------------------------------------------------
-- Workflows
CREATE TABLE pingan.workflow_transitions (
    workflow    text NOT NULL CHECK (workflow IN ('hazard', 'case')),
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    PRIMARY KEY (workflow, from_state, to_state)
);
INSERT INTO pingan.workflow_transitions (workflow, from_state, to_state) VALUES
    -- 发现 → 交办 → 处置 → 反馈 → 核查 → 销号; a failed check sends it back to 处置.
    ('hazard', 'found', 'assigned'),
    ('hazard', 'assigned', 'handling'),
    ('hazard', 'handling', 'feedback'),
    ('hazard', 'feedback', 'verified'),
    ('hazard', 'feedback', 'handling'),
    ('hazard', 'verified', 'closed'),
    -- 受理 → 调解 → 化解 / 移交 → 结案
    ('case', 'accepted', 'mediating'),
    ('case', 'accepted', 'transferred'),
    ('case', 'mediating', 'resolved'),
    ('case', 'mediating', 'transferred'),
    ('case', 'transferred', 'mediating'),
    ('case', 'resolved', 'closed'),
    ('case', 'transferred', 'closed');

-- A change of state must move forward along the workflow: the new state must be reachable from
-- the old one through legal steps. Daily exports from the towns show only the current state, so
-- an import may see found -> closed in one go; what it may never see is a step backwards.
CREATE FUNCTION pingan.check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state AND NOT EXISTS (
        WITH RECURSIVE reach (state) AS (
            SELECT OLD.state
            UNION
            SELECT t.to_state FROM pingan.workflow_transitions t
            JOIN reach r ON t.workflow = TG_ARGV[0] AND t.from_state = r.state
        )
        SELECT 1 FROM reach WHERE reach.state = NEW.state
    ) THEN
        RAISE EXCEPTION 'illegal % state change: % -> %', TG_ARGV[0], OLD.state, NEW.state
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

-- Risk hazards (风险隐患)
CREATE TABLE pingan.hazards (
    id             bigserial PRIMARY KEY,
    code           text NOT NULL UNIQUE CHECK (code <> ''),
    category       text NOT NULL CHECK (category IN (
                       'fire', 'gas', 'building', 'road_traffic', 'hazardous_chemicals',
                       'flood_typhoon', 'food_safety', 'public_order', 'construction',
                       'electrical', 'other')),
    level          text NOT NULL DEFAULT 'general' CHECK (level IN ('general', 'major', 'severe')),
    title          text NOT NULL CHECK (title <> ''),
    description    text,
    address        text,
    reporter_kind  text NOT NULL CHECK (reporter_kind IN ('grid_worker', 'public', 'inspection', 'hotline')),
    assigned_to    text,
    state          text NOT NULL CHECK (state IN ('found', 'assigned', 'handling', 'feedback', 'verified', 'closed')),
    found_at       timestamptz NOT NULL,
    assigned_at    timestamptz,
    deadline       timestamptz,
    rectified_at   timestamptz,
    verified_at    timestamptz,
    closed_at      timestamptz,
    grid_code      text NOT NULL REFERENCES pingan.grids (code) ON UPDATE CASCADE,
    village_code   text NOT NULL REFERENCES pingan.villages (code) ON UPDATE CASCADE,
    town_code      text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    geom           geometry(Point, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    src_datum      text NOT NULL DEFAULT 'cgcs2000',
    loc_method     text NOT NULL DEFAULT 'coordinates' CHECK (loc_method IN ('coordinates', 'geocoded')),
    geocode_level  text CHECK (geocode_level IN ('door', 'village', 'town')),
    geocode_score  real CHECK (geocode_score BETWEEN 0 AND 1),
    source         text NOT NULL,
    source_id      text NOT NULL,
    batch_id       bigint REFERENCES pingan.etl_batches (id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id),
    CONSTRAINT hazards_in_hierarchy CHECK (left(grid_code, 12) = village_code AND left(village_code, 9) = town_code),
    CONSTRAINT hazards_geocode_level CHECK ((loc_method = 'geocoded') = (geocode_level IS NOT NULL)),
    -- each state implies the timestamps of the steps before it, in order
    CONSTRAINT hazards_state_timestamps CHECK (
        (state = 'found') = (assigned_at IS NULL)
        AND (assigned_at IS NULL) = (deadline IS NULL)
        AND (state IN ('feedback', 'verified', 'closed')) = (rectified_at IS NOT NULL)
        AND (state IN ('verified', 'closed')) = (verified_at IS NOT NULL)
        AND (state = 'closed') = (closed_at IS NOT NULL)),
    CONSTRAINT hazards_time_order CHECK (
        (assigned_at IS NULL OR assigned_at >= found_at)
        AND (deadline IS NULL OR (deadline > found_at AND deadline >= assigned_at))
        AND (rectified_at IS NULL OR rectified_at >= assigned_at)
        AND (verified_at IS NULL OR verified_at >= rectified_at)
        AND (closed_at IS NULL OR closed_at >= verified_at))
);
CREATE INDEX hazards_geom_idx ON pingan.hazards USING gist (geom);
CREATE INDEX hazards_found_idx ON pingan.hazards (found_at);
CREATE INDEX hazards_grid_idx ON pingan.hazards (grid_code);
CREATE INDEX hazards_town_state_idx ON pingan.hazards (town_code, state);
CREATE TRIGGER hazards_transition BEFORE UPDATE OF state ON pingan.hazards
    FOR EACH ROW EXECUTE FUNCTION pingan.check_transition('hazard');

CREATE TABLE pingan.hazard_events (
    id          bigserial PRIMARY KEY,
    hazard_id   bigint NOT NULL REFERENCES pingan.hazards (id) ON DELETE CASCADE,
    from_state  text CHECK (from_state IN ('found', 'assigned', 'handling', 'feedback', 'verified', 'closed')),
    to_state    text NOT NULL CHECK (to_state IN ('found', 'assigned', 'handling', 'feedback', 'verified', 'closed')),
    at          timestamptz NOT NULL,
    actor       text,
    note        text,
    batch_id    bigint REFERENCES pingan.etl_batches (id)
);
CREATE INDEX hazard_events_hazard_idx ON pingan.hazard_events (hazard_id, at);

-- Disputes and incidents (矛盾纠纷)
CREATE TABLE pingan.cases (
    id                bigserial PRIMARY KEY,
    code              text NOT NULL UNIQUE CHECK (code <> ''),
    kind              text NOT NULL CHECK (kind IN ('dispute', 'incident')),
    category          text NOT NULL CHECK (category IN (
                          'neighbour', 'marriage_family', 'labour', 'land', 'property_management',
                          'traffic_accident', 'medical', 'consumer', 'construction', 'debt',
                          'theft', 'fraud', 'fight', 'public_order', 'other')),
    title             text NOT NULL CHECK (title <> ''),
    description       text,
    address           text,
    channel           text NOT NULL CHECK (channel IN ('grid_worker', 'walk_in', 'hotline', 'police', 'petition', 'online')),
    parties           integer NOT NULL DEFAULT 2 CHECK (parties >= 1),
    state             text NOT NULL CHECK (state IN ('accepted', 'mediating', 'resolved', 'transferred', 'closed')),
    accepted_at       timestamptz NOT NULL,
    deadline          timestamptz NOT NULL,
    mediating_at      timestamptz,
    resolved_at       timestamptz,
    transferred_at    timestamptz,
    closed_at         timestamptz,
    resolution_level  text CHECK (resolution_level IN ('grid', 'village', 'town', 'district')),
    transferred_to    text,
    grid_code         text NOT NULL REFERENCES pingan.grids (code) ON UPDATE CASCADE,
    village_code      text NOT NULL REFERENCES pingan.villages (code) ON UPDATE CASCADE,
    town_code         text NOT NULL REFERENCES pingan.towns (code) ON UPDATE CASCADE,
    geom              geometry(Point, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    src_datum         text NOT NULL DEFAULT 'cgcs2000',
    loc_method        text NOT NULL DEFAULT 'coordinates' CHECK (loc_method IN ('coordinates', 'geocoded')),
    geocode_level     text CHECK (geocode_level IN ('door', 'village', 'town')),
    geocode_score     real CHECK (geocode_score BETWEEN 0 AND 1),
    source            text NOT NULL,
    source_id         text NOT NULL,
    batch_id          bigint REFERENCES pingan.etl_batches (id),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id),
    CONSTRAINT cases_in_hierarchy CHECK (left(grid_code, 12) = village_code AND left(village_code, 9) = town_code),
    CONSTRAINT cases_geocode_level CHECK ((loc_method = 'geocoded') = (geocode_level IS NOT NULL)),
    CONSTRAINT cases_state_timestamps CHECK (
        (state = 'mediating') <= (mediating_at IS NOT NULL)
        AND (state = 'resolved') <= (resolved_at IS NOT NULL AND resolution_level IS NOT NULL)
        AND (state = 'transferred') <= (transferred_at IS NOT NULL AND transferred_to IS NOT NULL)
        AND (state = 'closed') = (closed_at IS NOT NULL)
        AND (state = 'closed') <= (resolved_at IS NOT NULL OR transferred_at IS NOT NULL)
        AND (resolved_at IS NULL OR resolution_level IS NOT NULL)
        AND (transferred_to IS NULL OR transferred_at IS NOT NULL)),
    CONSTRAINT cases_time_order CHECK (
        deadline > accepted_at
        AND (mediating_at IS NULL OR mediating_at >= accepted_at)
        AND (resolved_at IS NULL OR resolved_at >= coalesce(mediating_at, accepted_at))
        AND (transferred_at IS NULL OR transferred_at >= accepted_at)
        AND (closed_at IS NULL OR closed_at >= coalesce(resolved_at, transferred_at, accepted_at)))
);
CREATE INDEX cases_geom_idx ON pingan.cases USING gist (geom);
CREATE INDEX cases_accepted_idx ON pingan.cases (accepted_at);
CREATE INDEX cases_grid_idx ON pingan.cases (grid_code);
CREATE INDEX cases_town_state_idx ON pingan.cases (town_code, state);
CREATE TRIGGER cases_transition BEFORE UPDATE OF state ON pingan.cases
    FOR EACH ROW EXECUTE FUNCTION pingan.check_transition('case');

CREATE TABLE pingan.case_events (
    id          bigserial PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES pingan.cases (id) ON DELETE CASCADE,
    from_state  text CHECK (from_state IN ('accepted', 'mediating', 'resolved', 'transferred', 'closed')),
    to_state    text NOT NULL CHECK (to_state IN ('accepted', 'mediating', 'resolved', 'transferred', 'closed')),
    at          timestamptz NOT NULL,
    actor       text,
    note        text,
    batch_id    bigint REFERENCES pingan.etl_batches (id)
);
CREATE INDEX case_events_case_idx ON pingan.case_events (case_id, at);

-- ---------------------------------------------------------------------------------------------
-- Audit log: append-only by design (the security issue revokes UPDATE/DELETE from the service).
CREATE TABLE pingan.audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    role         text NOT NULL,
    action       text NOT NULL,
    object_type  text,
    object_id    text,
    client_addr  inet,
    reason       text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON pingan.audit_log (at);
CREATE INDEX audit_log_actor_idx ON pingan.audit_log (actor, at);

-- ---------------------------------------------------------------------------------------------
-- Per-transaction caller context. The application sets these with set_config(..., true) at the
-- start of each transaction; row-level-security policies (security issue) read them through
-- these functions. Unset means "no caller": the functions return NULL and policies deny.
CREATE FUNCTION pingan.ctx_role() RETURNS text LANGUAGE sql STABLE AS
    $$ SELECT nullif(current_setting('pingan.role', true), '') $$;
CREATE FUNCTION pingan.ctx_user() RETURNS text LANGUAGE sql STABLE AS
    $$ SELECT nullif(current_setting('pingan.user', true), '') $$;
CREATE FUNCTION pingan.ctx_areas() RETURNS text[] LANGUAGE sql STABLE AS
    $$ SELECT string_to_array(nullif(current_setting('pingan.areas', true), ''), ',') $$;

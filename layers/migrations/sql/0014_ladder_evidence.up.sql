-- The accountability ladder's evidence (issue 6), and the public survey as an ETL layer.
--
-- 1. pingan.index_warning_evidence: notes (with at most one attached file) that people add to a
--    ladder item, append-only: the service roles may INSERT and SELECT, never UPDATE or DELETE,
--    and a trigger refuses changes from anyone (the owner too). Who may add evidence: staff with
--    jurisdiction over the place (admin, command district-wide; town its town; grid the villages
--    its grids lie in), on open items only; the analyst and public roles see nothing. Who added
--    it and when come from the transaction (pingan.user / pingan.role), never from the client.
--    Evidence outlives a rebuild of the ladder: it keeps the item's natural key (level, code,
--    opened), and an item deleted by a rebuild (another model) leaves its evidence with
--    warning_id NULL; layers/index.py links it again when the same item comes back.
-- 2. pingan.index_survey becomes an ETL target (`pingan etl load survey.xlsx --layer survey`):
--    provenance columns like the other layers', respondents optional, and a trigger that
--    refuses a place that is not loaded (the loader reports its reason, etl/targets.py).

CREATE TABLE pingan.index_warning_evidence (
    id            bigserial PRIMARY KEY,
    warning_id    bigint REFERENCES pingan.index_warnings (id) ON DELETE SET NULL,
    level         text NOT NULL CHECK (level IN ('village', 'town')),
    code          text NOT NULL,
    town_code     text NOT NULL,
    opened        date NOT NULL,
    step          smallint NOT NULL CHECK (step BETWEEN 1 AND 4),
    note          text NOT NULL CHECK (btrim(note) <> '' AND char_length(note) <= 4000),
    file_name     text CHECK (char_length(file_name) BETWEEN 1 AND 200),
    media_type    text CHECK (media_type IN ('application/pdf', 'image/jpeg', 'image/png',
                  'application/vnd.openxmlformats-officedocument.wordprocessingml.document')),
    file_size     integer CHECK (file_size BETWEEN 1 AND 4194304),
    file_sha256   text CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    content       bytea,
    created_by    text NOT NULL,
    created_role  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((content IS NULL) = (file_name IS NULL) AND (content IS NULL) = (media_type IS NULL)
           AND (content IS NULL) = (file_size IS NULL) AND (content IS NULL) = (file_sha256 IS NULL)),
    CHECK (content IS NULL OR octet_length(content) = file_size),
    CHECK (left(code, 9) = town_code)
);
CREATE INDEX index_warning_evidence_warning_idx ON pingan.index_warning_evidence (warning_id, id);
CREATE INDEX index_warning_evidence_item_idx ON pingan.index_warning_evidence (level, code, opened);

-- The item's place, step and the author come from the database, whatever the INSERT says.
CREATE FUNCTION pingan.index_evidence_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    w pingan.index_warnings%ROWTYPE;
BEGIN
    SELECT * INTO w FROM pingan.index_warnings WHERE id = NEW.warning_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no ladder item %', NEW.warning_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF w.status <> 'open' THEN
        RAISE EXCEPTION 'ladder item % is closed: evidence is added to open items only', w.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'index_warning_evidence_open';
    END IF;
    NEW.level := w.level;
    NEW.code := w.code;
    NEW.town_code := w.town_code;
    NEW.opened := w.opened;
    NEW.step := w.step;
    NEW.created_by := coalesce(nullif(current_setting('pingan.user', true), ''), session_user);
    NEW.created_role := coalesce(nullif(current_setting('pingan.role', true), ''), 'owner');
    NEW.created_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER index_evidence_stamp BEFORE INSERT ON pingan.index_warning_evidence
    FOR EACH ROW EXECUTE FUNCTION pingan.index_evidence_stamp();

-- Append-only: only the link to the item may change (NULL when a rebuild deletes the item,
-- back to the item when it returns); nothing is deleted.
CREATE FUNCTION pingan.index_evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'evidence is append-only: it cannot be deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.id, NEW.level, NEW.code, NEW.opened, NEW.step, NEW.note, NEW.file_name, NEW.media_type,
        NEW.file_sha256, NEW.created_by, NEW.created_role, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.level, OLD.code, OLD.opened, OLD.step, OLD.note, OLD.file_name, OLD.media_type,
        OLD.file_sha256, OLD.created_by, OLD.created_role, OLD.created_at)
       OR NEW.content IS DISTINCT FROM OLD.content THEN
        RAISE EXCEPTION 'evidence is append-only: it cannot be changed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER index_evidence_append_only BEFORE UPDATE OR DELETE ON pingan.index_warning_evidence
    FOR EACH ROW EXECUTE FUNCTION pingan.index_evidence_append_only();

-- Jurisdiction: a row is visible, and may be added, when its ladder item is (index_warnings'
-- own policies decide: district-wide roles all, a town its town, a grid user its villages).
ALTER TABLE pingan.index_warning_evidence ENABLE ROW LEVEL SECURITY;
CREATE POLICY index_warning_evidence_read ON pingan.index_warning_evidence FOR SELECT
    USING (EXISTS (SELECT 1 FROM pingan.index_warnings w WHERE w.id = warning_id));
CREATE POLICY index_warning_evidence_add ON pingan.index_warning_evidence FOR INSERT
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid
    WITH CHECK (EXISTS (SELECT 1 FROM pingan.index_warnings w WHERE w.id = warning_id AND w.status = 'open'));
GRANT SELECT ON pingan.index_warning_evidence
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_system;
GRANT INSERT ON pingan.index_warning_evidence
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid;
GRANT USAGE ON SEQUENCE pingan.index_warning_evidence_id_seq
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid;

-- ----------------------------------------------------------------------------------------------
-- The survey as an ETL layer: the loader's provenance columns; the key stays (period, level, code).
ALTER TABLE pingan.index_survey
    ALTER COLUMN respondents DROP NOT NULL,
    ADD COLUMN name text,
    ADD COLUMN source text NOT NULL DEFAULT 'import',
    ADD COLUMN source_id text,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT index_survey_some_rate
        CHECK (awareness IS NOT NULL OR participation IS NOT NULL OR satisfaction IS NOT NULL);

-- A survey row names a loaded place: by code, or (code missing) by a village name that is
-- unique in the district; the loader turns the refusal into a reject with this reason.
CREATE FUNCTION pingan.index_survey_place() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    found_code text;
    n integer;
BEGIN
    IF NEW.level = 'town' THEN
        PERFORM 1 FROM pingan.towns WHERE code = NEW.code;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown town %', NEW.code
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'index_survey_place';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.code IS NULL AND NEW.name IS NOT NULL THEN
        SELECT min(code), count(*) INTO found_code, n FROM pingan.villages WHERE name = NEW.name;
        IF n <> 1 THEN
            RAISE EXCEPTION 'village name % matches % villages', NEW.name, n
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'index_survey_place';
        END IF;
        NEW.code := found_code;
    END IF;
    PERFORM 1 FROM pingan.villages WHERE code = NEW.code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown village %', NEW.code
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'index_survey_place';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER index_survey_place BEFORE INSERT OR UPDATE ON pingan.index_survey
    FOR EACH ROW EXECUTE FUNCTION pingan.index_survey_place();

DROP TRIGGER index_survey_place ON pingan.index_survey;
DROP FUNCTION pingan.index_survey_place();
DELETE FROM pingan.index_survey WHERE respondents IS NULL;
ALTER TABLE pingan.index_survey
    DROP CONSTRAINT index_survey_some_rate,
    DROP COLUMN updated_at,
    DROP COLUMN source_id,
    DROP COLUMN source,
    DROP COLUMN name,
    ALTER COLUMN respondents SET NOT NULL;
DROP TABLE pingan.index_warning_evidence;
DROP FUNCTION pingan.index_evidence_append_only();
DROP FUNCTION pingan.index_evidence_stamp();

DROP VIEW IF EXISTS pingan.index_star_villages, pingan.index_towns, pingan.index_villages;
DROP FUNCTION IF EXISTS pingan.index_colour_zh(text);
DROP TABLE IF EXISTS pingan.index_warning_events, pingan.index_warnings, pingan.index_stars,
    pingan.index_survey, pingan.index_scores, pingan.index_models;

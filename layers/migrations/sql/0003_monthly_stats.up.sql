-- Monthly aggregates per grid, village and town: the first derived layer, recomputed by
-- `pingan etl refresh` only for the periods and areas whose inputs changed.
CREATE TABLE pingan.monthly_stats (
    period                     date NOT NULL CHECK (extract(day FROM period) = 1),
    level                      text NOT NULL CHECK (level IN ('grid', 'village', 'town')),
    code                       text NOT NULL,
    hazards_found              integer NOT NULL DEFAULT 0 CHECK (hazards_found >= 0),
    hazards_rectified          integer NOT NULL DEFAULT 0 CHECK (hazards_rectified >= 0),
    hazards_rectified_on_time  integer NOT NULL DEFAULT 0 CHECK (hazards_rectified_on_time >= 0),
    hazards_closed             integer NOT NULL DEFAULT 0 CHECK (hazards_closed >= 0),
    hazards_overdue            integer NOT NULL DEFAULT 0 CHECK (hazards_overdue >= 0),
    cases_accepted             integer NOT NULL DEFAULT 0 CHECK (cases_accepted >= 0),
    cases_resolved             integer NOT NULL DEFAULT 0 CHECK (cases_resolved >= 0),
    cases_resolved_grassroots  integer NOT NULL DEFAULT 0 CHECK (cases_resolved_grassroots >= 0),
    cases_overdue              integer NOT NULL DEFAULT 0 CHECK (cases_overdue >= 0),
    refreshed_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, level, code),
    CHECK (hazards_rectified_on_time <= hazards_rectified),
    CHECK (cases_resolved_grassroots <= cases_resolved)
);
CREATE INDEX monthly_stats_code_idx ON pingan.monthly_stats (level, code, period);

-- How far each refresh job has read the load batches.
CREATE TABLE pingan.refresh_state (
    job            text PRIMARY KEY,
    last_batch_id  bigint NOT NULL DEFAULT 0,
    refreshed_at   timestamptz NOT NULL DEFAULT now()
);

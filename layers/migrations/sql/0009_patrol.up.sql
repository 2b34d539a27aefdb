-- Patrol plans (issue 9): routes through the places that need a patrol, per team and shift.
--
-- Written only by the owner (`pingan patrol plan --save`, layers/patrol.py); the service side
-- reads. Routes pass through places (key sites, hazards, villages), not individuals, but a plan
-- tells when which place is watched: staff only (tests/layers/test_access.py SELECT_MATRIX).

-- One planning run: what was asked (params), how it went (status, messages) and the totals.
CREATE TABLE pingan.patrol_plans (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (name <> ''),
    network         text NOT NULL CHECK (network <> ''),
    plan_date       date NOT NULL,
    solver          text NOT NULL CHECK (solver IN ('ortools', 'greedy')),
    status          text NOT NULL CHECK (status IN ('complete', 'partial', 'empty')),
    messages        text[] NOT NULL DEFAULT '{}',
    params          jsonb NOT NULL DEFAULT '{}',
    teams           integer NOT NULL CHECK (teams >= 0),
    stops_total     integer NOT NULL CHECK (stops_total >= 0),
    stops_visited   integer NOT NULL CHECK (stops_visited BETWEEN 0 AND stops_total),
    length_m        double precision NOT NULL CHECK (length_m >= 0),
    coverage        jsonb NOT NULL DEFAULT '{}',   -- share of key sites (and hot spots) within 200 m
    created_by      text NOT NULL DEFAULT current_user,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- One team's route: the road geometry (NULL when the team stays home) and its timing.
CREATE TABLE pingan.patrol_routes (
    id           bigserial PRIMARY KEY,
    plan_id      bigint NOT NULL REFERENCES pingan.patrol_plans (id) ON DELETE CASCADE,
    team         text NOT NULL CHECK (team <> ''),
    team_name    text,
    travel_mode  text NOT NULL CHECK (travel_mode IN ('foot', 'bicycle', 'car')),
    shift_start  timestamptz NOT NULL,
    shift_end    timestamptz NOT NULL,
    start_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    stops        integer NOT NULL CHECK (stops >= 0),
    length_m     double precision NOT NULL CHECK (length_m >= 0),
    duration_s   double precision NOT NULL CHECK (duration_s >= 0),
    geom         geometry(LineString, 4490) CHECK (ST_IsValid(geom)),
    UNIQUE (plan_id, team),
    CHECK (shift_end > shift_start AND end_at >= start_at)
);
CREATE INDEX patrol_routes_geom_idx ON pingan.patrol_routes USING gist (geom);

-- Every candidate stop of a plan: visited (with its route, order and times), dropped (with the
-- reason) or unsnapped (no road within the snapping distance): none is silently lost.
CREATE TABLE pingan.patrol_stops (
    id          bigserial PRIMARY KEY,
    plan_id     bigint NOT NULL REFERENCES pingan.patrol_plans (id) ON DELETE CASCADE,
    route_id    bigint REFERENCES pingan.patrol_routes (id) ON DELETE CASCADE,
    seq         integer CHECK (seq >= 1),
    stop_id     text NOT NULL CHECK (stop_id <> ''),
    kind        text NOT NULL,
    ref         text,
    name        text,
    priority    double precision NOT NULL CHECK (priority > 0),
    status      text NOT NULL CHECK (status IN ('visited', 'dropped', 'unsnapped')),
    reason      text,
    arrival     timestamptz,
    departure   timestamptz,
    vertex      bigint,
    snap_m      double precision CHECK (snap_m >= 0),
    geom        geometry(Point, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    UNIQUE (plan_id, stop_id),
    CHECK ((status = 'visited') = (route_id IS NOT NULL AND seq IS NOT NULL AND arrival IS NOT NULL)),
    CHECK ((status = 'visited') OR reason IS NOT NULL)
);
CREATE INDEX patrol_stops_plan_idx ON pingan.patrol_stops (plan_id, route_id, seq);
CREATE INDEX patrol_stops_route_idx ON pingan.patrol_stops (route_id);
CREATE INDEX patrol_stops_geom_idx ON pingan.patrol_stops USING gist (geom);

GRANT SELECT ON pingan.patrol_plans, pingan.patrol_routes, pingan.patrol_stops
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_system;

-- Saved patrol plans as a layer (issue 9): who may read them, and the two served views.
--
-- A plan may belong to a town (patrol_plans.town_code: the planner's --town, or the one town
-- all its stops lie in; layers/patrol.py save_plan). Readers, decided here and nowhere else:
--   admin, command, system   every plan
--   town                     the plans of its town(s)
--   grid                     the plans of the town its grids lie in (grid code = town code + 6)
--   analyst, public          none (no privilege at all, as in 0009)
-- A plan without a town (district-wide) is read by the district-wide roles only. Routes and
-- stops follow their plan. The owner (CLI, ETL) is not bound.
--
-- Writers on the service side (the OGC process `patrol-plan` saves the plan it made for its
-- caller): admin, command, system any plan, town users plans of their own town only (the
-- policies' WITH CHECK); grid users, analysts and the public none. INSERT only: a saved plan is
-- not changed afterwards. Saving (or deleting, as the owner) renews the versions of the layers
-- patrol-routes and patrol-stops, whoever writes (a trigger), so cached tiles are not reused.

ALTER TABLE pingan.patrol_plans ADD COLUMN town_code text REFERENCES pingan.towns (code);
-- who saved it: the signed-in user when the service saves it, else the database role
ALTER TABLE pingan.patrol_plans ALTER COLUMN created_by
    SET DEFAULT coalesce(nullif(pingan.ctx_user(), ''), current_user);
CREATE INDEX patrol_plans_town_idx ON pingan.patrol_plans (town_code);
-- road metres from the previous visit (the team's depot for the first stop): exports of a
-- saved plan give the same legs as the plan had when it was solved
ALTER TABLE pingan.patrol_stops ADD COLUMN leg_m double precision CHECK (leg_m >= 0);

ALTER TABLE pingan.patrol_plans ENABLE ROW LEVEL SECURITY;
CREATE POLICY patrol_plans_district ON pingan.patrol_plans
    TO pingan_as_admin, pingan_as_command, pingan_as_system USING (true) WITH CHECK (true);
CREATE POLICY patrol_plans_town ON pingan.patrol_plans TO pingan_as_town
    USING (town_code = ANY (pingan.ctx_areas())) WITH CHECK (town_code = ANY (pingan.ctx_areas()));
CREATE POLICY patrol_plans_grid ON pingan.patrol_plans TO pingan_as_grid
    USING (town_code IN (SELECT left(a, 9) FROM unnest(pingan.ctx_areas()) a))
    WITH CHECK (town_code IN (SELECT left(a, 9) FROM unnest(pingan.ctx_areas()) a));

-- The children follow their plan: the subquery itself runs under the plan's policies.
ALTER TABLE pingan.patrol_routes ENABLE ROW LEVEL SECURITY;
CREATE POLICY patrol_routes_parent ON pingan.patrol_routes
    USING (EXISTS (SELECT 1 FROM pingan.patrol_plans p WHERE p.id = plan_id))
    WITH CHECK (EXISTS (SELECT 1 FROM pingan.patrol_plans p WHERE p.id = plan_id));
ALTER TABLE pingan.patrol_stops ENABLE ROW LEVEL SECURITY;
CREATE POLICY patrol_stops_parent ON pingan.patrol_stops
    USING (EXISTS (SELECT 1 FROM pingan.patrol_plans p WHERE p.id = plan_id))
    WITH CHECK (EXISTS (SELECT 1 FROM pingan.patrol_plans p WHERE p.id = plan_id));

-- The layers "patrol-routes" and "patrol-stops" (layers/catalog.py): each row with its plan's
-- name, date and town. security_invoker: the caller's privileges and the policies above apply.
CREATE VIEW pingan.patrol_routes_served WITH (security_invoker, security_barrier) AS
SELECT r.id, r.plan_id, p.name AS plan_name, p.plan_date, p.town_code, p.network, p.solver,
       r.team, r.team_name, r.travel_mode, r.shift_start, r.shift_end, r.start_at, r.end_at,
       r.stops, r.length_m, r.duration_s, r.geom
FROM pingan.patrol_routes r
JOIN pingan.patrol_plans p ON p.id = r.plan_id;

CREATE VIEW pingan.patrol_stops_served WITH (security_invoker, security_barrier) AS
SELECT s.id, s.plan_id, p.name AS plan_name, p.plan_date, p.town_code, r.team, s.seq, s.stop_id,
       s.kind, s.ref, s.name, s.priority, s.status, s.reason, s.arrival, s.departure, s.snap_m,
       s.leg_m, s.geom
FROM pingan.patrol_stops s
JOIN pingan.patrol_plans p ON p.id = s.plan_id
LEFT JOIN pingan.patrol_routes r ON r.id = s.route_id;

GRANT SELECT ON pingan.patrol_routes_served, pingan.patrol_stops_served
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_system;

GRANT INSERT ON pingan.patrol_plans, pingan.patrol_routes, pingan.patrol_stops
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_system;
GRANT USAGE ON SEQUENCE pingan.patrol_plans_id_seq, pingan.patrol_routes_id_seq, pingan.patrol_stops_id_seq
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_system;

-- The layers' versions (tiles are cached by them): renewed by the statement that saves or
-- deletes plans, with the owner's rights (the service may not write pingan.layer_versions).
CREATE FUNCTION pingan.patrol_layers_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pingan.layer_versions (layer_id) VALUES ('patrol-routes'), ('patrol-stops')
    ON CONFLICT (layer_id) DO UPDATE SET version = pingan.layer_versions.version + 1, changed_at = now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION pingan.patrol_layers_changed() FROM PUBLIC;
CREATE TRIGGER patrol_plans_layers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON pingan.patrol_plans FOR EACH STATEMENT EXECUTE FUNCTION pingan.patrol_layers_changed();

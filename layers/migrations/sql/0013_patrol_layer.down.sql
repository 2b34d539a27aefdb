DROP TRIGGER patrol_plans_layers_changed ON pingan.patrol_plans;
DROP FUNCTION pingan.patrol_layers_changed();
REVOKE INSERT ON pingan.patrol_plans, pingan.patrol_routes, pingan.patrol_stops
    FROM pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_system;
REVOKE USAGE ON SEQUENCE pingan.patrol_plans_id_seq, pingan.patrol_routes_id_seq, pingan.patrol_stops_id_seq
    FROM pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_system;
DROP VIEW pingan.patrol_stops_served;
DROP VIEW pingan.patrol_routes_served;
DROP POLICY patrol_stops_parent ON pingan.patrol_stops;
DROP POLICY patrol_routes_parent ON pingan.patrol_routes;
DROP POLICY patrol_plans_grid ON pingan.patrol_plans;
DROP POLICY patrol_plans_town ON pingan.patrol_plans;
DROP POLICY patrol_plans_district ON pingan.patrol_plans;
ALTER TABLE pingan.patrol_stops DISABLE ROW LEVEL SECURITY;
ALTER TABLE pingan.patrol_routes DISABLE ROW LEVEL SECURITY;
ALTER TABLE pingan.patrol_plans DISABLE ROW LEVEL SECURITY;
ALTER TABLE pingan.patrol_stops DROP COLUMN leg_m;
DROP INDEX pingan.patrol_plans_town_idx;
ALTER TABLE pingan.patrol_plans DROP COLUMN town_code;
ALTER TABLE pingan.patrol_plans ALTER COLUMN created_by SET DEFAULT current_user;

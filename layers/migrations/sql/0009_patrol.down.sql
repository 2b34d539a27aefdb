DROP TABLE IF EXISTS pingan.patrol_stops, pingan.patrol_routes, pingan.patrol_plans;

-- A record the loader placed only by its address, matched to a village or a town (geocode_level
-- 'village' or 'town'), stands at that area's representative point and so carries the grid that
-- point falls in: a grid picked by geometry, not the record's own. The worker of that one grid is
-- not responsible for it, and would otherwise see every such hazard, case and five-loss person
-- file of the whole village or town. Grid workers see the records placed by coordinates or to a
-- door; the village's and town's staff (town role, district roles) see them all, as before.
ALTER POLICY hazards_grid ON pingan.hazards
    USING (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door')
    WITH CHECK (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door');
ALTER POLICY cases_grid ON pingan.cases
    USING (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door')
    WITH CHECK (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door');
ALTER POLICY persons_grid ON pingan.persons
    USING (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door')
    WITH CHECK (grid_code = ANY (pingan.ctx_areas()) AND coalesce(geocode_level, 'door') = 'door');

ALTER POLICY hazards_grid ON pingan.hazards
    USING (grid_code = ANY (pingan.ctx_areas())) WITH CHECK (grid_code = ANY (pingan.ctx_areas()));
ALTER POLICY cases_grid ON pingan.cases
    USING (grid_code = ANY (pingan.ctx_areas())) WITH CHECK (grid_code = ANY (pingan.ctx_areas()));
ALTER POLICY persons_grid ON pingan.persons
    USING (grid_code = ANY (pingan.ctx_areas())) WITH CHECK (grid_code = ANY (pingan.ctx_areas()));

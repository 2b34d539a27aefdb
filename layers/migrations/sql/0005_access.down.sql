DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pingan_service', 'pingan_as_admin', 'pingan_as_command', 'pingan_as_town',
                             'pingan_as_grid', 'pingan_as_analyst', 'pingan_as_public', 'pingan_as_system'] LOOP
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA pingan FROM %I', r);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA pingan FROM %I', r);
        EXECUTE format('REVOKE USAGE ON SCHEMA pingan FROM %I', r);
    END LOOP;
END
$$;
REVOKE SELECT ON public.alembic_version FROM pingan_service;

DROP VIEW pingan.persons_served;
DROP VIEW pingan.persons_by_village;
DROP VIEW pingan.persons_by_grid;
DROP VIEW pingan.persons_by_area;
DROP FUNCTION pingan.ctx_sees_area(text, text, text);
DROP VIEW pingan.person_counts_by_area;
DROP VIEW pingan.person_counts;
DROP FUNCTION pingan.suppress(bigint, integer);

DROP POLICY person_grades_parent ON pingan.person_grades;
DROP POLICY person_visits_parent ON pingan.person_visits;
DROP POLICY hazard_events_parent ON pingan.hazard_events;
DROP POLICY case_events_parent ON pingan.case_events;
ALTER TABLE pingan.person_grades DISABLE ROW LEVEL SECURITY;
ALTER TABLE pingan.person_visits DISABLE ROW LEVEL SECURITY;
ALTER TABLE pingan.hazard_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE pingan.case_events DISABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['persons', 'hazards', 'cases'] LOOP
        EXECUTE format('DROP POLICY %I ON pingan.%I', t || '_district', t);
        EXECUTE format('DROP POLICY %I ON pingan.%I', t || '_town', t);
        EXECUTE format('DROP POLICY %I ON pingan.%I', t || '_grid', t);
        EXECUTE format('ALTER TABLE pingan.%I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;

DROP TABLE pingan.privacy_config;
DROP FUNCTION pingan.ctx_locates_persons();

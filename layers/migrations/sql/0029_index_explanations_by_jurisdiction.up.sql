-- The index's explanations (index_months.value and .risk, index_contributions()) hold, for every
-- village and town and month, the figures of the index's person indicators: persons_red (red-graded
-- five-loss persons per 10,000 residents; times the public population, the count) and
-- visits_overdue (a count), exact. Granted to every role that may see places (0016), they gave
-- analysts, and town and grid users outside their jurisdiction, what the counts of persons
-- withhold (0005, 0028). Withholding only the person indicators would not do: the published score
-- less the other indicators' deductions gives theirs.
--
-- So an explanation is for those who may see the persons behind it: admin, command and system
-- everywhere, a town user for its town and its villages; analysts and grid users (whose persons
-- are those of their grids, not of the whole village) get none. The scores, classes, ranks and
-- veto reasons (index_scores, index_villages, index_towns) stay as they were.

CREATE FUNCTION pingan.ctx_explains(p_level text, p_code text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT CASE coalesce(pingan.ctx_role(), '')
        WHEN 'admin' THEN true WHEN 'command' THEN true WHEN 'system' THEN true
        WHEN 'town' THEN left(p_code, 9) = ANY (pingan.ctx_areas())
        -- no caller stated: the owner's own tools (CLI, ETL); the service always states one
        WHEN '' THEN pg_has_role(session_user,
                                 (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'pingan'),
                                 'MEMBER')
        ELSE false
    END
$$;

-- The explanation as 0020 builds it becomes the owner's own; the name callers use checks first.
ALTER FUNCTION pingan.index_contributions(date, text, text) RENAME TO index_contributions_all;
REVOKE ALL ON FUNCTION pingan.index_contributions_all(date, text, text) FROM PUBLIC;
CREATE FUNCTION pingan.index_contributions(p_period date, p_level text, p_code text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN pingan.ctx_explains(p_level, p_code)
                THEN pingan.index_contributions_all(p_period, p_level, p_code) END
$$;
REVOKE ALL ON FUNCTION pingan.index_contributions(date, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pingan.index_contributions(date, text, text)
    TO pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
       pingan_as_system;

REVOKE SELECT ON pingan.index_months FROM pingan_as_town, pingan_as_grid, pingan_as_analyst;

-- The OGC process index-compute (issue 6) runs layers.index.compute in the web service, acting
-- for its caller. Only the district-wide roles that lead the monthly index (admin, command) may
-- write what a computation writes: the model's text, the month's scores, and the ladder rebuilt
-- from them (items, their step history, and the link of evidence to its item). Town and grid
-- users, analysts and the public still write nothing here; the process refuses them too.
GRANT INSERT, UPDATE ON pingan.index_models TO pingan_as_admin, pingan_as_command;
GRANT INSERT, DELETE ON pingan.index_scores TO pingan_as_admin, pingan_as_command;
GRANT INSERT, UPDATE, DELETE ON pingan.index_warnings TO pingan_as_admin, pingan_as_command;
GRANT INSERT, DELETE ON pingan.index_warning_events TO pingan_as_admin, pingan_as_command;
GRANT UPDATE (warning_id) ON pingan.index_warning_evidence TO pingan_as_admin, pingan_as_command;
GRANT USAGE ON SEQUENCE pingan.index_models_id_seq, pingan.index_warnings_id_seq,
    pingan.index_warning_events_id_seq TO pingan_as_admin, pingan_as_command;

-- Evidence is re-linked to its item when a rebuild brings the item back (the append-only
-- trigger lets only warning_id change); without an UPDATE policy RLS would skip those rows.
CREATE POLICY index_warning_evidence_relink ON pingan.index_warning_evidence FOR UPDATE
    TO pingan_as_admin, pingan_as_command USING (true) WITH CHECK (true);

-- Tile caches key on layer versions, which the service may not write: the scores' statements
-- renew the index layers' versions with the owner's rights, whoever computes.
CREATE FUNCTION pingan.index_layers_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pingan.layer_versions (layer_id) VALUES ('index-villages'), ('index-towns')
    ON CONFLICT (layer_id) DO UPDATE SET version = pingan.layer_versions.version + 1, changed_at = now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION pingan.index_layers_changed() FROM PUBLIC;
CREATE TRIGGER index_scores_layers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON pingan.index_scores FOR EACH STATEMENT EXECUTE FUNCTION pingan.index_layers_changed();

DROP TRIGGER index_scores_layers_changed ON pingan.index_scores;
DROP FUNCTION pingan.index_layers_changed();
DROP POLICY index_warning_evidence_relink ON pingan.index_warning_evidence;
REVOKE USAGE ON SEQUENCE pingan.index_models_id_seq, pingan.index_warnings_id_seq,
    pingan.index_warning_events_id_seq FROM pingan_as_admin, pingan_as_command;
REVOKE UPDATE (warning_id) ON pingan.index_warning_evidence FROM pingan_as_admin, pingan_as_command;
REVOKE INSERT, DELETE ON pingan.index_warning_events FROM pingan_as_admin, pingan_as_command;
REVOKE INSERT, UPDATE, DELETE ON pingan.index_warnings FROM pingan_as_admin, pingan_as_command;
REVOKE INSERT, DELETE ON pingan.index_scores FROM pingan_as_admin, pingan_as_command;
REVOKE INSERT, UPDATE ON pingan.index_models FROM pingan_as_admin, pingan_as_command;

-- A dismissed job leaves nothing behind (OGC API - Processes: dismissing a job removes its
-- results). Its cells are deleted by the runner, acting for the caller (0011); its rasters by
-- this trigger, with the owner's rights, since the service side never deletes a raster (0012).
CREATE FUNCTION pingan.job_dismissed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM pingan.rasters WHERE job_id = NEW.id;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION pingan.job_dismissed() FROM PUBLIC;
CREATE TRIGGER jobs_dismissed AFTER UPDATE OF status ON pingan.jobs FOR EACH ROW
    WHEN (NEW.status = 'dismissed' AND OLD.status IS DISTINCT FROM 'dismissed')
    EXECUTE FUNCTION pingan.job_dismissed();

-- Drops everything the foundation created except the postgis extension, which other schemas
-- in the same database may use.
DROP SCHEMA IF EXISTS pingan CASCADE;

#!/bin/bash
# Runs once, when the volume is new (after the image's own 10_postgis.sh). Two roles, as in
# cli/devdb.py: pingan owns the database (migrations, ETL, CLI); pingan_service is what the web
# service connects as: not the owner, not a superuser, NOBYPASSRLS, so row-level security binds it.
set -euo pipefail
: "${PINGAN_DB_PASSWORD:?PINGAN_DB_PASSWORD must be set}"
: "${PINGAN_SERVICE_DB_PASSWORD:?PINGAN_SERVICE_DB_PASSWORD must be set}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v pw="$PINGAN_DB_PASSWORD" -v spw="$PINGAN_SERVICE_DB_PASSWORD" <<'SQL'
CREATE ROLE pingan LOGIN PASSWORD :'pw' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE ROLE pingan_service LOGIN PASSWORD :'spw' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
-- the access roles the service switches to per request (cli/devdb.py ACCESS_ROLES)
CREATE ROLE pingan_as_admin NOLOGIN NOBYPASSRLS;
CREATE ROLE pingan_as_command NOLOGIN NOBYPASSRLS;
CREATE ROLE pingan_as_town NOLOGIN NOBYPASSRLS;
CREATE ROLE pingan_as_grid NOLOGIN NOBYPASSRLS;
CREATE ROLE pingan_as_analyst NOLOGIN NOBYPASSRLS;
CREATE ROLE pingan_as_public NOLOGIN NOBYPASSRLS;
CREATE ROLE pingan_as_system NOLOGIN NOBYPASSRLS;
GRANT pingan_as_admin, pingan_as_command, pingan_as_town, pingan_as_grid, pingan_as_analyst,
      pingan_as_public, pingan_as_system TO pingan_service;
-- collation C: text compared as bytes (code point order), as cli/devdb.py creates databases
CREATE DATABASE pingan OWNER pingan ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0;
\connect pingan
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pgrouting;
SQL

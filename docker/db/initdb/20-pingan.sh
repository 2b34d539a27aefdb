#!/bin/bash
# Runs once, when the volume is new (after the image's own 10_postgis.sh). The service gets its
# own role: not a superuser, no BYPASSRLS, owner of its database only.
set -euo pipefail
: "${PINGAN_DB_PASSWORD:?PINGAN_DB_PASSWORD must be set}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v pw="$PINGAN_DB_PASSWORD" <<'SQL'
CREATE ROLE pingan LOGIN PASSWORD :'pw' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE DATABASE pingan OWNER pingan ENCODING 'UTF8' TEMPLATE template0;
\connect pingan
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pgrouting;
SQL

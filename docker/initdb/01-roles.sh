#!/bin/bash
# Run once by the TimescaleDB-HA image on an empty volume, as the superuser (who then stays unused): the platform's
# owner role (FKS_DB_USER, no superuser, no CREATEROLE/CREATEDB), its two databases, the extensions that need a
# superuser to create, and the read-only `analyst` role beside it (login with ANALYST_PASSWORD). Passwords reach
# psql as variables (:'pw'), so any character is safe.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner="$FKS_DB_USER" -v owner_pw="$FKS_DB_PASSWORD" -v analyst_pw="$ANALYST_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'owner_pw';
CREATE ROLE analyst LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 10 PASSWORD :'analyst_pw';
ALTER ROLE analyst SET statement_timeout = '60s';
ALTER ROLE analyst SET default_transaction_read_only = on;
CREATE DATABASE fks OWNER :"owner";
CREATE DATABASE dagster OWNER :"owner";
REVOKE ALL ON DATABASE dagster FROM PUBLIC;
\connect fks
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS vector;
GRANT CREATE ON SCHEMA public TO :"owner";
SQL

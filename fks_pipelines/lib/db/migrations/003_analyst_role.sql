-- The read-only role analysts log in as (`fks db analyst-url` gives it a password and LOGIN).
-- It reads the marts (and later analytics schemas) and nothing else: no raw tables, no writes, no DDL,
-- not even temporary tables. Roles are cluster-wide; the grants are per database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analyst') THEN
        CREATE ROLE analyst NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO analyst', current_database());
END
$$;

-- PUBLIC: every role (the keyword, spelt as PostgreSQL's documentation does).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;  -- noqa: CP02
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;  -- noqa: CP02

CREATE SCHEMA IF NOT EXISTS marts;
COMMENT ON SCHEMA marts IS 'dbt marts: the tables analysts query (read-only for the analyst role).';
GRANT USAGE ON SCHEMA marts TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA marts TO analyst;
-- Tables dbt creates later (as the platform's admin role) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA marts GRANT SELECT ON TABLES TO analyst;

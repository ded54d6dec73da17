-- The analyst role writes nothing and holds nothing up (see fks_pipelines.lib.db.roles and docs/security.md).
--
-- 1. No large objects and no advisory locks: an advisory lock with the loaders' or the migrations' key would stop
--    every load. EXECUTE on these functions (roles.PLATFORM_ONLY_FUNCTIONS) goes from PUBLIC to the platform's
--    role. pg_catalog belongs to the bootstrap superuser, so only a superuser can do this: on an external server
--    where the platform's role is not one, this step warns and `fks db analyst-url` lists what remains open.
DO $$
DECLARE
    fn regprocedure;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE WARNING 'fks 007: % is not a superuser: PUBLIC (and analyst) keeps EXECUTE on the advisory-lock and large-object functions; see docs/security.md', current_user;
        RETURN;
    END IF;
    FOR fn IN SELECT unnest(ARRAY[
        'pg_advisory_lock(bigint)', 'pg_advisory_lock(integer,integer)',
        'pg_advisory_lock_shared(bigint)', 'pg_advisory_lock_shared(integer,integer)',
        'pg_advisory_xact_lock(bigint)', 'pg_advisory_xact_lock(integer,integer)',
        'pg_advisory_xact_lock_shared(bigint)', 'pg_advisory_xact_lock_shared(integer,integer)',
        'pg_try_advisory_lock(bigint)', 'pg_try_advisory_lock(integer,integer)',
        'pg_try_advisory_lock_shared(bigint)', 'pg_try_advisory_lock_shared(integer,integer)',
        'pg_try_advisory_xact_lock(bigint)', 'pg_try_advisory_xact_lock(integer,integer)',
        'pg_try_advisory_xact_lock_shared(bigint)', 'pg_try_advisory_xact_lock_shared(integer,integer)',
        'lo_creat(integer)', 'lo_create(oid)', 'lo_from_bytea(oid,bytea)', 'lo_import(text)', 'lo_import(text,oid)',
        'lo_put(oid,bigint,bytea)', 'lowrite(integer,bytea)', 'lo_truncate(integer,integer)',
        'lo_truncate64(integer,bigint)', 'lo_unlink(oid)'
    ]::regprocedure[]) LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, current_user);
    END LOOP;
END
$$;

-- 2. No portfolio: account names, cash, deposits, trades and profit splits are not the analyst's to read.
REVOKE ALL ON ALL TABLES IN SCHEMA portfolio FROM analyst;
REVOKE ALL ON SCHEMA portfolio FROM analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA portfolio REVOKE ALL ON TABLES FROM analyst;

-- 3. The recommendations stay readable, but not the prompts (they hold each account's cash and positions) nor the
--    raw LLM answers and errors (which may quote them). New tables in the schema are granted one by one.
REVOKE ALL ON recommendations.generations FROM analyst;
GRANT SELECT (
    decision_date, account, generator, model, decided_at, latency_ms, prompt_tokens, completion_tokens,
    attempts, retrieved_ids, created_at
) ON recommendations.generations TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA recommendations REVOKE ALL ON TABLES FROM analyst;

-- One word for the knowledge layer: its folder (defs/knowledge), asset group, asset keys (knowledge/*) and now its
-- schema. 005 created the schema as `rag`; this renames it where it exists. Tables, indexes, grants, default
-- privileges and comments belong to the schema's objects and move with the rename, but a function's body is
-- stored as text: knowledge.search and knowledge.similar_to (created beside the chunk table by
-- fks_pipelines.lib.db.knowledge.ensure_chunk_table) would still name rag.*, so every function whose body or
-- comment names rag.* is re-created with knowledge.* instead, exactly as ensure_chunk_table now writes it.
-- A fresh database (005, then this) and a renamed one end with the same objects.
DO $$
DECLARE
    fn record;
BEGIN
    IF to_regnamespace('rag') IS NOT NULL THEN
        IF to_regnamespace('knowledge') IS NOT NULL THEN
            RAISE EXCEPTION 'schemas rag and knowledge both exist: move what rag holds into knowledge and drop rag, then migrate again';
        END IF;
        ALTER SCHEMA rag RENAME TO knowledge;
    END IF;
    FOR fn IN
        SELECT p.oid, obj_description(p.oid, 'pg_proc') AS comment
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('sql', 'plpgsql'))
          AND p.prosrc ~ '\mrag\.'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
        ORDER BY p.oid
    LOOP
        EXECUTE regexp_replace(pg_get_functiondef(fn.oid), '\mrag\.', 'knowledge.', 'g');
        IF fn.comment ~ '\mrag\.' THEN
            EXECUTE format('COMMENT ON FUNCTION %s IS %L', fn.oid::regprocedure, regexp_replace(fn.comment, '\mrag\.', 'knowledge.', 'g'));
        END IF;
    END LOOP;
END
$$;

CREATE SCHEMA IF NOT EXISTS knowledge;
GRANT USAGE ON SCHEMA knowledge TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA knowledge TO analyst;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA knowledge TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA knowledge GRANT SELECT ON TABLES TO analyst;

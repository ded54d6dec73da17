-- The chunk table's DDL, here rather than in Python: knowledge.chunks holds one embedding model's vectors, and its
-- `vector(n)` column takes n from that model, which no migration can know. So this migration defines the DDL as a
-- function of the dimension, and the embedding step calls it (fks_pipelines.lib.db.knowledge.ensure_chunk_table,
-- under an advisory lock) with its model's dimension:
--   - no table yet: create it (with its indexes) and the search functions that read it (knowledge.search,
--     knowledge.similar_to: similar_to is a SQL function, checked against the table when it is created);
--   - a table of another dimension: drop the HNSW index, empty the table (every embedding belongs to the old
--     model), retype the column and rebuild the index; the next embedding run re-embeds every document;
--   - the same dimension: nothing.
-- Returns what it did: 'created', 'retyped' or 'unchanged'. ef_search is the search functions' default (and the
-- HNSW scan width they set): at least k is always used. The HNSW build parameters (m 16, ef_construction 200; 64
-- leaves some clusters unreachable on clustered data) are fks_pipelines.lib.db.knowledge.HNSW_M and
-- HNSW_EF_CONSTRUCTION, which benchmarks/vector_search.py starts from. Every statement needs pgvector, which 005
-- installs where the server offers it; without it the function raises when called, not when defined.
CREATE OR REPLACE FUNCTION knowledge.ensure_chunk_table(dimension int, ef_search int DEFAULT 200)
RETURNS text
LANGUAGE plpgsql
AS $ensure$
DECLARE
    held int;
    action text;
BEGIN
    IF dimension IS NULL OR dimension < 1 OR ef_search IS NULL OR ef_search < 1 THEN
        RAISE EXCEPTION 'knowledge.ensure_chunk_table needs a dimension >= 1 and ef_search >= 1';
    END IF;
    SELECT a.atttypmod INTO held FROM pg_attribute a
    WHERE a.attrelid = to_regclass('knowledge.chunks') AND a.attname = 'embedding';
    IF held = dimension THEN
        RETURN 'unchanged';
    END IF;
    IF held IS NULL THEN
        EXECUTE format($ddl$
            CREATE TABLE knowledge.chunks (
                document_id   text        NOT NULL REFERENCES knowledge.documents (id) ON DELETE CASCADE,
                chunk_index   int         NOT NULL,
                kind          text        NOT NULL,   -- the document's, repeated so filters and the index
                symbol        text,                   -- scan read one table
                as_of         timestamptz NOT NULL,
                start_char    int         NOT NULL,
                end_char      int         NOT NULL,
                text          text        NOT NULL,
                model         text        NOT NULL,
                model_version text        NOT NULL,
                embedding     vector(%s) NOT NULL,
                embedded_at   timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (document_id, chunk_index)
            )$ddl$, dimension);
        EXECUTE $ddl$COMMENT ON TABLE knowledge.chunks IS
            'Token-aware chunks of knowledge.documents with their embeddings (one model at a time).'$ddl$;
        EXECUTE 'CREATE INDEX chunks_model ON knowledge.chunks (model, model_version)';
        EXECUTE 'CREATE INDEX chunks_as_of ON knowledge.chunks (as_of)';
        action := 'created';
    ELSE
        EXECUTE 'DROP INDEX IF EXISTS knowledge.chunks_embedding_hnsw';
        EXECUTE 'TRUNCATE knowledge.chunks';
        EXECUTE format('ALTER TABLE knowledge.chunks ALTER COLUMN embedding TYPE vector(%s)', dimension);
        action := 'retyped';
    END IF;
    EXECUTE 'CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON knowledge.chunks'
        ' USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200)';
    EXECUTE format($search$
CREATE OR REPLACE FUNCTION knowledge.search(
    query vector,
    k int DEFAULT 10,
    as_of timestamptz DEFAULT now(),
    symbols text[] DEFAULT NULL,
    kinds text[] DEFAULT NULL,
    ef_search int DEFAULT %1$s
) RETURNS TABLE (
    document_id text, kind text, market text, symbol text, document_as_of timestamptz, distance double precision,
    chunk_index int, chunk text, text text, metadata jsonb
)
LANGUAGE plpgsql STABLE
SET hnsw.iterative_scan = 'relaxed_order'  -- keep scanning the index until k rows pass the filters
SET hnsw.ef_search = '%1$s'          -- restored when the function returns
AS $fn$
#variable_conflict use_column
BEGIN
    IF query IS NULL OR k IS NULL OR k < 1 THEN
        RAISE EXCEPTION 'knowledge.search needs a query vector and k >= 1';
    END IF;
    PERFORM set_config('hnsw.ef_search', greatest(search.ef_search, search.k)::text, true);
    RETURN QUERY
    WITH nearest AS MATERIALIZED (
        SELECT c.document_id, c.chunk_index, c.embedding <=> search.query AS distance
        FROM knowledge.chunks c
        WHERE c.as_of <= coalesce(search.as_of, now())
          AND (search.symbols IS NULL OR c.symbol = ANY (search.symbols))
          AND (search.kinds IS NULL OR c.kind = ANY (search.kinds))
        ORDER BY c.embedding <=> search.query
        LIMIT search.k * 4   -- several chunks of one document may come first; one per document is kept
    ), best AS (
        SELECT DISTINCT ON (n.document_id) n.document_id, n.chunk_index, n.distance
        FROM nearest n ORDER BY n.document_id, n.distance
    )
    SELECT d.id, d.kind, d.market, d.symbol, d.as_of, b.distance, b.chunk_index, c.text, d.text, d.metadata
    FROM best b
    JOIN knowledge.documents d ON d.id = b.document_id
    JOIN knowledge.chunks c ON c.document_id = b.document_id AND c.chunk_index = b.chunk_index
    ORDER BY b.distance, d.id
    LIMIT search.k;
END
$fn$$search$, ef_search);
    EXECUTE $ddl$COMMENT ON FUNCTION knowledge.search(vector, int, timestamptz, text[], text[], int) IS
  'Nearest documents to a query embedding (cosine) among those whose as_of <= the given time;'
  ' optional symbol and kind filters.'$ddl$;
    EXECUTE $search$
CREATE OR REPLACE FUNCTION knowledge.similar_to(
    document_key text, k int DEFAULT 10, as_of timestamptz DEFAULT now(),
    symbols text[] DEFAULT NULL, kinds text[] DEFAULT NULL
) RETURNS TABLE (
    document_id text, kind text, market text, symbol text, document_as_of timestamptz, distance double precision,
    chunk_index int, chunk text, text text, metadata jsonb
)
LANGUAGE sql STABLE AS $fn$
    SELECT s.* FROM knowledge.documents d
    JOIN knowledge.chunks c ON c.document_id = d.id AND c.chunk_index = 0
    CROSS JOIN LATERAL knowledge.search(
        c.embedding, similar_to.k + 1, similar_to.as_of, similar_to.symbols, similar_to.kinds
    ) s
    WHERE d.key = similar_to.document_key AND s.document_id <> d.id
    ORDER BY s.distance
    LIMIT similar_to.k
$fn$$search$;
    EXECUTE $ddl$COMMENT ON FUNCTION knowledge.similar_to(text, int, timestamptz, text[], text[]) IS
  'Documents like the one with this key (its first chunk''s embedding as the query),'
  ' point-in-time like knowledge.search.'$ddl$;
    EXECUTE 'GRANT EXECUTE ON FUNCTION knowledge.search(vector, int, timestamptz, text[], text[], int) TO analyst';
    EXECUTE 'GRANT EXECUTE ON FUNCTION knowledge.similar_to(text, int, timestamptz, text[], text[]) TO analyst';
    EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA knowledge TO analyst';
    RETURN action;
END
$ensure$;
COMMENT ON FUNCTION knowledge.ensure_chunk_table(int, int) IS
'Create knowledge.chunks for n-dimensional embeddings (or retype it, emptying it) with its HNSW index and the search functions; returns created, retyped or unchanged.';
-- Granted like every function of the schema (010 grants them all): it runs as its caller, and only the schema's
-- owner may create or alter the table, so an analyst calling it gets a permission error and changes nothing.
GRANT EXECUTE ON FUNCTION knowledge.ensure_chunk_table(int, int) TO analyst;

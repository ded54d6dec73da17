-- Hybrid search for analysts and for `fks search`: PostgreSQL full-text search on the documents' text plus
-- pgvector similarity, fused by reciprocal rank (RRF: score = sum over both rankings of 1 / (rrf_k + rank)),
-- with knowledge.search's filters (symbols, kinds) and its point-in-time rule (as_of <= the given time).
-- Full-text search finds the words a question uses ("sharp drop", "RSI oversold": the descriptors market
-- summaries carry, see fks_pipelines/lib/rag/documents.py); the vector ranking orders what the words leave tied
-- and answers questions in other words. A NULL query vector (SQL has no embedding model) ranks by text only.
-- The vector side calls knowledge.search, which exists once something is embedded (it is created with
-- knowledge.chunks); before that the function ranks by text only. plpgsql resolves both at call time.
-- Without pgvector (an external server without it; 005 skips the extension) there is no vector type, and the
-- function is not created.

ALTER TABLE knowledge.documents
ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED;
CREATE INDEX IF NOT EXISTS documents_search_vector ON knowledge.documents USING gin (search_vector);

DO $migration$
BEGIN
    IF to_regtype('vector') IS NULL THEN
        RAISE NOTICE 'pgvector is not installed: knowledge.hybrid_search is not created';
        RETURN;
    END IF;
    EXECUTE $def$
CREATE OR REPLACE FUNCTION knowledge.hybrid_search(
    question text,
    query vector DEFAULT NULL,
    k int DEFAULT 10,
    as_of timestamptz DEFAULT now(),
    symbols text[] DEFAULT NULL,
    kinds text[] DEFAULT NULL,
    rrf_k int DEFAULT 60,
    candidates int DEFAULT 100
) RETURNS TABLE (
    document_id text, key text, kind text, market text, symbol text, document_as_of timestamptz,
    score double precision, text_rank int, vector_rank int, text text, metadata jsonb
)
LANGUAGE plpgsql STABLE
AS $fn$
#variable_conflict use_column
DECLARE
    -- Any of the question's words may match (plainto_tsquery ANDs them; a question's filler words would then
    -- exclude every document): the rank rewards documents that hold more of them, close together.
    tsq tsquery := CASE WHEN coalesce(btrim(question), '') = '' THEN NULL
                   ELSE nullif(replace(plainto_tsquery('english', question)::text, ' & ', ' | '), '')::tsquery END;
    n int := greatest(hybrid_search.candidates, hybrid_search.k);
    vector_ids text[] := '{}';
BEGIN
    IF k IS NULL OR k < 1 OR rrf_k IS NULL OR rrf_k < 1 THEN
        RAISE EXCEPTION 'knowledge.hybrid_search needs k >= 1 and rrf_k >= 1';
    END IF;
    IF tsq IS NULL AND query IS NULL THEN
        RAISE EXCEPTION 'knowledge.hybrid_search needs a question with searchable words or a query vector';
    END IF;
    IF query IS NOT NULL AND to_regprocedure('knowledge.search(vector, int, timestamptz, text[], text[], int)') IS NOT NULL THEN
        SELECT array_agg(s.document_id ORDER BY s.distance, s.document_id) INTO vector_ids
        FROM knowledge.search(hybrid_search.query, n, hybrid_search.as_of, hybrid_search.symbols, hybrid_search.kinds) s;
        vector_ids := coalesce(vector_ids, '{}');
    END IF;
    RETURN QUERY
    WITH by_text AS (
        SELECT d.id, row_number() OVER (ORDER BY ts_rank_cd(d.search_vector, tsq) DESC, d.as_of DESC, d.id)::int AS r
        FROM knowledge.documents d
        WHERE tsq IS NOT NULL AND d.search_vector @@ tsq
          AND d.as_of <= coalesce(hybrid_search.as_of, now())
          AND (hybrid_search.symbols IS NULL OR d.symbol = ANY (hybrid_search.symbols))
          AND (hybrid_search.kinds IS NULL OR d.kind = ANY (hybrid_search.kinds))
        ORDER BY r
        LIMIT n
    ), by_vector AS (
        SELECT v.id, v.r::int AS r FROM unnest(vector_ids) WITH ORDINALITY AS v (id, r)
    ), fused AS (
        SELECT coalesce(t.id, v.id) AS id, t.r AS text_rank, v.r AS vector_rank,
               coalesce(1.0 / (hybrid_search.rrf_k + t.r), 0) + coalesce(1.0 / (hybrid_search.rrf_k + v.r), 0) AS score
        FROM by_text t FULL JOIN by_vector v ON v.id = t.id
    )
    SELECT d.id, d.key, d.kind, d.market, d.symbol, d.as_of, f.score::float8, f.text_rank, f.vector_rank, d.text, d.metadata
    FROM fused f JOIN knowledge.documents d ON d.id = f.id
    ORDER BY f.score DESC, d.as_of DESC, d.id
    LIMIT hybrid_search.k;
END
$fn$
    $def$;
    EXECUTE $def$
COMMENT ON FUNCTION knowledge.hybrid_search(text, vector, int, timestamptz, text[], text[], int, int) IS
  'Documents known by as_of ranked by full-text match of the question fused with vector similarity to the query embedding (reciprocal rank, rrf_k 60); query NULL: text only. Filters as knowledge.search.'
    $def$;
    EXECUTE $def$ GRANT EXECUTE ON FUNCTION knowledge.hybrid_search(text, vector, int, timestamptz, text[], text[], int, int) TO analyst $def$;
END
$migration$;

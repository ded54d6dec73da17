-- The knowledge layer's documents (what the recommendation retrieves from, what analysts search). The chunk
-- table holding the embeddings is created by fks_pipelines.lib.db.knowledge.ensure_chunk_table, because its
-- vector dimension comes from the embedding model, not from this file. 010 renames the schema to knowledge.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'vector') THEN
        CREATE EXTENSION IF NOT EXISTS vector;
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS rag;
COMMENT ON SCHEMA rag IS 'Documents built from market data, backtests and signals, with pgvector embeddings (searchable by analysts).';

CREATE TABLE IF NOT EXISTS rag.documents (
    id text PRIMARY KEY,   -- sha256 of (kind, key, symbol, as_of, text, metadata): the content
    key text NOT NULL UNIQUE, -- what the document is about, e.g. market_summary/spot/BTCUSDT/2024-05-01
    kind text NOT NULL,
    market text,
    symbol text,
    as_of timestamptz NOT NULL,      -- when this information existed: point-in-time searches never see later ones
    text text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS documents_kind_as_of ON rag.documents (kind, as_of);
CREATE INDEX IF NOT EXISTS documents_symbol_as_of ON rag.documents (symbol, as_of);

GRANT USAGE ON SCHEMA rag TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA rag TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA rag GRANT SELECT ON TABLES TO analyst;

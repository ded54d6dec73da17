"""The knowledge layer: documents built from the marts and analytics, and from the record (trades, positions, past
recommendations), embedded into pgvector."""

from dagster import Definitions

from fks_pipelines.defs.knowledge.assets import document_embeddings, documents, record_documents

defs = Definitions(assets=[documents, record_documents, document_embeddings])

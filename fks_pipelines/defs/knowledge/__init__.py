"""The knowledge layer: documents built from the marts and analytics, embedded into pgvector."""

from dagster import Definitions

from fks_pipelines.defs.knowledge.assets import document_embeddings, documents

defs = Definitions(assets=[documents, document_embeddings])

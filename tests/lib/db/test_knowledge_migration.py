"""Migration 010 renames the knowledge layer's schema from rag to knowledge: a database built before it
(documents, embeddings and the search functions under rag) ends with exactly the objects a fresh database
has, its data intact, its functions reading knowledge.* and the analyst's grants kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from fks_pipelines.lib.db import knowledge
from fks_pipelines.lib.db.connect import connect, migrate, migrations, with_database
from fks_pipelines.lib.db.roles import ANALYST, enable_analyst_login, url_for_role

RENAME = "010_knowledge_schema"
CHUNK_DDL = "020_knowledge_chunks"
DIMENSION = 3
T0 = datetime(2024, 1, 1, tzinfo=UTC)
VECTORS = ["[1,0,0]", "[0.9,0.1,0]", "[0,1,0]", "[0,0.9,0.1]", "[0,0,1]"]


@pytest.fixture
def empty_database(databases):
    """A new database with no migrations applied (dropped afterwards)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(databases.admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(databases.admin, name)
    yield url
    databases.drop(url)


def migrate_before(conn: psycopg.Connection, version: str) -> None:
    """The migrations older than ``version``, recorded as migrate() records them: a database from before it."""
    with conn.transaction():
        conn.execute(
            "CREATE TABLE public.fks_schema_migrations"
            " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for name, sql in migrations():
            if name < version:
                conn.execute(sql)
                conn.execute("INSERT INTO public.fks_schema_migrations (version) VALUES (%s)", (name,))


def build_rag_layer(conn: psycopg.Connection) -> None:
    """What the code before 010 built under rag: the chunk table and its indexes (the same DDL under the old
    name), the search functions whose bodies name rag.*, and a few documents with embeddings."""
    conn.execute("ALTER SCHEMA rag RENAME TO knowledge")
    conn.execute(dict(migrations())[CHUNK_DDL])  # the chunk table's DDL, which the code before 010 ran from Python
    knowledge.ensure_chunk_table(conn, DIMENSION)
    conn.execute("DROP FUNCTION knowledge.ensure_chunk_table(int, int)")
    functions = [
        row[0]
        for row in conn.execute(
            "SELECT pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = 'knowledge'::regnamespace"
            " AND proname IN ('search', 'similar_to') ORDER BY proname"
        ).fetchall()
    ]
    assert len(functions) == 2
    conn.execute("ALTER SCHEMA knowledge RENAME TO rag")
    for definition in functions:  # their bodies named rag.* then
        conn.execute(definition.replace("knowledge.", "rag."))
    with conn.transaction():
        for i, vector in enumerate(VECTORS):
            as_of = T0 + timedelta(days=i)
            conn.execute(
                "INSERT INTO rag.documents (id, key, kind, symbol, as_of, text)"
                " VALUES (%s, %s, 'market_summary', 'BTCUSDT', %s, %s)",
                (f"id{i}", f"doc/{i}", as_of, f"day {i}"),
            )
            conn.execute(
                "INSERT INTO rag.chunks (document_id, chunk_index, kind, symbol, as_of, start_char, end_char, text,"
                " model, model_version, embedding)"
                " VALUES (%s, 0, 'market_summary', 'BTCUSDT', %s, 0, 5, %s, 'm', '1', %s::vector)",
                (f"id{i}", as_of, f"day {i}", vector),
            )


def catalog(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Everything about the knowledge schema that a rename could get wrong: its objects, their definitions,
    comments, grants and default privileges."""
    queries = {
        "schemas": "SELECT nspname, nspacl::text, obj_description(oid, 'pg_namespace') FROM pg_namespace"
        " WHERE nspname IN ('rag', 'knowledge')",
        "relations": "SELECT relname, relkind, relacl::text, obj_description(oid, 'pg_class') FROM pg_class"
        " WHERE relnamespace = 'knowledge'::regnamespace ORDER BY relname",
        "columns": "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid)"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE c.relnamespace = 'knowledge'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY c.relname, a.attnum",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'knowledge' ORDER BY indexname",
        "constraints": "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = 'knowledge'::regnamespace ORDER BY conname",
        "functions": "SELECT oid::regprocedure::text, pg_get_functiondef(oid), proacl::text,"
        " obj_description(oid, 'pg_proc')"
        " FROM pg_proc WHERE pronamespace = 'knowledge'::regnamespace ORDER BY 1",
        "default_privileges": "SELECT defaclobjtype, defaclacl::text FROM pg_default_acl"
        " WHERE defaclnamespace = 'knowledge'::regnamespace ORDER BY 1",
    }
    return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


def searches_as_analyst(url: str, schema: str) -> tuple[list[tuple], list[tuple]]:
    """(search, similar_to) results run as the analyst role against ``schema``'s functions."""
    with psycopg.connect(url) as analyst:
        search = analyst.execute(
            f"SELECT document_id, distance FROM {schema}.search('[1,0,0]'::vector, 3, %s)", (T0 + timedelta(days=9),)
        ).fetchall()
        similar = analyst.execute(
            f"SELECT document_id FROM {schema}.similar_to('doc/2', 2, %s)", (T0 + timedelta(days=9),)
        ).fetchall()
    return search, similar


def test_an_existing_rag_schema_becomes_the_same_knowledge_schema_a_fresh_database_has(databases, empty_database):
    fresh_url = databases.create()
    try:
        with connect(fresh_url) as fresh:
            knowledge.ensure_chunk_table(fresh, DIMENSION)
            expected = catalog(fresh)
    finally:
        databases.drop(fresh_url)
    assert [row[0] for row in expected["schemas"]] == ["knowledge"]
    assert {row[0] for row in expected["relations"]} >= {"documents", "chunks", "chunks_embedding_hnsw"}
    assert [row[0] for row in expected["functions"]] == [
        "knowledge.ensure_chunk_table(integer,integer)",
        "knowledge.hybrid_search(text,vector,integer,timestamp with time zone,text[],text[],integer,integer)",
        "knowledge.search(vector,integer,timestamp with time zone,text[],text[],integer)",
        "knowledge.similar_to(text,integer,timestamp with time zone,text[],text[])",
    ]

    with connect(empty_database) as conn:
        migrate_before(conn, RENAME)
        build_rag_layer(conn)
        enable_analyst_login(conn, "analyst-pw")
        analyst_url = url_for_role(empty_database, ANALYST, "analyst-pw")
        before = searches_as_analyst(analyst_url, "rag")
        assert [r[0] for r in before[0]] == ["id0", "id1", "id2"] and len(before[1]) == 2

        assert RENAME in migrate(conn)
        migrated = catalog(conn)
        assert migrated == expected
        assert conn.execute("SELECT to_regnamespace('rag')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE prosrc ~ '\\mrag\\.'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM knowledge.chunks").fetchone()[0] == len(VECTORS)

        # The functions work, for the analyst and through Python, on the data that was there.
        assert searches_as_analyst(analyst_url, "knowledge") == before
        hits = knowledge.search(conn, np.array([0, 0, 1], dtype=np.float32), 2, as_of=T0 + timedelta(days=3))
        assert hits[0].document_id == "id3" and "id4" not in {h.document_id for h in hits}  # id4: after as_of
        with psycopg.connect(analyst_url) as analyst, pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute("DELETE FROM knowledge.documents")

        # Applied again (say, by hand), the migration changes nothing.
        conn.execute(dict(migrations())[RENAME])
        assert catalog(conn) == expected


def test_the_rename_refuses_when_both_schemas_exist(empty_database):
    with connect(empty_database) as conn:
        migrate_before(conn, RENAME)
        conn.execute("CREATE SCHEMA knowledge")
        with pytest.raises(psycopg.errors.RaiseException, match="schemas rag and knowledge both exist"):
            migrate(conn)
        assert conn.execute("SELECT to_regnamespace('rag') IS NOT NULL").fetchone()[0]

"""`fks search`: the knowledge layer's point-in-time hybrid search, from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from fks_pipelines.cli.options import json_option, symbols_option
from fks_pipelines.cli.types import CommaChoice, Moment
from fks_pipelines.lib.db.knowledge import MAX_K
from fks_pipelines.lib.db.platform import database_urls
from fks_pipelines.lib.errors import BadInputError, FksError
from fks_pipelines.lib.rag.documents import ALL_KINDS
from fks_pipelines.settings import Settings


@click.command()
@click.argument("question")
@click.option("-k", type=click.IntRange(1, MAX_K), default=5, show_default=True, help="How many documents.")
@click.option(
    "--as-of", type=Moment(), help="Only what was known by then (ISO time, UTC when no offset; default: now)."
)
@symbols_option("Comma-separated symbols to restrict to.")
@click.option(
    "--kinds",
    "--kind",
    type=CommaChoice(ALL_KINDS),
    help=f"Comma-separated document kinds ({', '.join(ALL_KINDS)}); e.g. --kind recommendation for past "
    "recommendations and what happened.",
)
@json_option("One JSON object per hit: key, kind, symbol, as_of, score, text.")
def search(
    question: str, k: int, as_of: datetime | None, symbols: list[str] | None, kinds: list[str] | None, as_json: bool
) -> None:
    """Hybrid search over the knowledge layer, point-in-time: QUESTION's words (PostgreSQL full-text search) and
    its meaning (embedded with the configured model, pgvector), fused by reciprocal rank, among the documents
    known by --as-of (the same knowledge.hybrid_search analysts call in SQL)."""
    from fks_pipelines.lib.db.connect import connect
    from fks_pipelines.lib.db.knowledge import has_chunks, hybrid_search
    from fks_pipelines.lib.rag.embedder import Embedder

    if not question.strip():
        raise BadInputError("the question is empty")
    settings = Settings.from_env()
    when = as_of or datetime.now(UTC)
    embedder = Embedder(settings.embedding_model, settings.embedding_model_path, settings.embedding_device)
    data_url, _ = database_urls(settings)
    with connect(data_url) as conn:
        if not has_chunks(conn):
            raise FksError("nothing is embedded yet: run `fks demo` or materialize knowledge/document_embeddings")
        hits = hybrid_search(
            conn, question, embedder.encode([question])[0], k, as_of=when, symbols=symbols or None, kinds=kinds
        )
    if as_json:
        for hit in hits:
            row = {"key": hit.key, "kind": hit.kind, "symbol": hit.symbol, "as_of": hit.as_of.isoformat()}
            click.echo(json.dumps(row | {"score": round(hit.score, 6), "text": hit.text}, ensure_ascii=False))
        return
    click.echo(f'{len(hits)} documents known by {when:%Y-%m-%d %H:%M %Z} best matching "{question}":')
    for hit in hits:
        click.echo(f"\n[{hit.score:.4f}] {hit.kind} {hit.symbol or ''} as of {hit.as_of:%Y-%m-%d %H:%M}")
        click.echo("  " + hit.text.replace("\n", "\n  "))

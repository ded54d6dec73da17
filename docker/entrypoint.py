"""The image's entrypoint: builds the database URLs from their parts, each part URL-escaped, then runs the
command. Compose and Kubernetes pass FKS_DB_HOST, FKS_DB_PORT, FKS_DB_USER and FKS_DB_PASSWORD (a secret); a
password holding `@`, `/`, `:` or `%` would break a URL pasted together by the shell. A FKS_DATABASE_URL already
set wins (an external server given as one URL)."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote


def database_urls(env: dict[str, str]) -> dict[str, str]:
    """FKS_DATABASE_URL (data, psycopg) and FKS_DAGSTER_DATABASE_URL (Dagster's storage, psycopg2 driver)."""
    if env.get("FKS_DATABASE_URL") or not env.get("FKS_DB_HOST"):
        return {}
    user, password = quote(env["FKS_DB_USER"], safe=""), quote(env["FKS_DB_PASSWORD"], safe="")
    where = f"{user}:{password}@{env['FKS_DB_HOST']}:{env.get('FKS_DB_PORT', '5432')}"
    options = f"?sslmode={quote(env['FKS_DB_SSLMODE'], safe='')}" if env.get("FKS_DB_SSLMODE") else ""
    return {
        "FKS_DATABASE_URL": f"postgresql://{where}/fks{options}",
        "FKS_DAGSTER_DATABASE_URL": f"postgresql+psycopg2://{where}/dagster{options}",
    }


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: entrypoint.py COMMAND [ARGS...]")
    env = dict(os.environ)
    env.update(database_urls(env))
    env.pop("FKS_DB_PASSWORD", None)  # the URLs carry it; the run's own environment needs nothing else
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main(sys.argv[1:])

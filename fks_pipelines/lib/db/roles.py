"""Logins for people: the read-only ``analyst`` role (created by migration 003) gets a password and LOGIN."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

ANALYST = "analyst"


def enable_analyst_login(conn: psycopg.Connection, password: str) -> None:
    """Give the analyst role LOGIN with ``password`` (idempotent; the password is replaced)."""
    conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(ANALYST), sql.Literal(password)))


def url_for_role(url: str, role: str, password: str) -> str:
    """``url`` with another role and password (same server and database)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def stored_password(path: Path) -> str:
    """A password generated once into ``path`` (mode 0600, its folder 0700) and read back afterwards."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    return path.read_text().strip()

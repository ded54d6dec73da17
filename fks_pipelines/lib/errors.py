"""One exception family per failure kind, each message saying what failed and where.

Callers (assets, the CLI) catch these to turn them into a clear message; nothing else should be caught
broadly. Every message names the file or request and, where there is one, the row.
"""

from __future__ import annotations


class FksError(Exception):
    """Base class for errors the platform raises on purpose."""


class BadInputError(FksError):
    """A file or API response that does not have the shape or values we require.

    ``where`` names the file or request; ``row`` is the 1-based data row (header excluded) when known.
    Nothing of a rejected input is ever written.
    """

    def __init__(self, message: str, *, where: str | None = None, row: int | None = None):
        self.where = where
        self.row = row
        parts = []
        if where:
            parts.append(where)
        if row is not None:
            parts.append(f"row {row}")
        prefix = (": ".join([", ".join(parts), ""])) if parts else ""
        super().__init__(f"{prefix}{message}")


class BadValueError(BadInputError, ValueError):
    """A single value (a command-line option, an interval spelling) that is malformed or out of range.

    A ``ValueError`` too, so code that parses values (click's option types) can catch it as one.
    """


class ChecksumMismatchError(BadInputError):
    """An archive whose sha256 differs from the digest in its ``.CHECKSUM`` sidecar."""


class SourceUnavailableError(FksError):
    """A remote source that keeps failing (5xx, timeouts, bans) after retries, or whose circuit is open."""


class DatabaseError(FksError):
    """The database could not be started, reached, or set up."""


class RefusedLoadError(FksError):
    """A load that would replace bars already held with fewer bars, without proof they do not exist or --force.
    Nothing is written; the refusal is logged in raw.ingest_log with status ``refused``."""

"""Each benchmark's own FKS_HOME on a free port, set before anything reads the settings.

A benchmark never reads the user's FKS_HOME (a demo's ``settings.env`` there), their FKS_* variables or the
default port 54329, which the demo's or ``fks dev``'s server may hold: importing this module (first, before any
``fks_pipelines`` module builds definitions from the settings) replaces them with a temporary home and a free
port. The embedded server a benchmark starts there (on first use, via ``_scratch``) is stopped and the home
removed when the benchmark exits. Kept: ``FKS_PG_BIN_DIR`` (another PostgreSQL 18 build, e.g. with TimescaleDB).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from fks_pipelines.lib.db.embedded import EmbeddedPostgres, free_port

KEPT = ("FKS_PG_BIN_DIR",)


def own_home() -> EmbeddedPostgres:
    """Clear the user's FKS_* variables (but ``KEPT``) and DAGSTER_HOME, point FKS_HOME at a fresh temporary
    folder and FKS_PG_PORT at a free port; the server of that home (not started here) is cleaned up at exit."""
    for key in list(os.environ):
        if (key.startswith("FKS_") and key not in KEPT) or key == "DAGSTER_HOME":
            del os.environ[key]
    home, port = Path(tempfile.mkdtemp(prefix="fks-bench-home-")), free_port()
    os.environ.update(FKS_HOME=str(home), FKS_PG_PORT=str(port))
    server = EmbeddedPostgres(home, port=port, bin_path=os.environ.get("FKS_PG_BIN_DIR") or None)
    atexit.register(_remove, server)
    return server


def _remove(server: EmbeddedPostgres) -> None:
    if server.running():
        server.stop()
    shutil.rmtree(server.home, ignore_errors=True)


SERVER = own_home()

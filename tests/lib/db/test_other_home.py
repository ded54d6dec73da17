"""`fks` run from another folder (its default FKS_HOME, ./.fks, is new there) on the port of the user's own running
server: it names the home whose server that is and creates nothing in the folder."""

from __future__ import annotations

import os
import subprocess
import sys

FKS = [sys.executable, "-m", "fks_pipelines.cli"]


def test_fks_elsewhere_names_the_running_home_and_creates_nothing(pg_server, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FKS_") and k != "DAGSTER_HOME"}
    env["FKS_PG_PORT"] = str(pg_server.port)
    for args in (["db", "start"], ["ingest", "sample", "--days", "1"]):
        done = subprocess.run([*FKS, *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert (
            f"in use by the embedded server of {pg_server.home}, not of this home"
            f" ({elsewhere / '.fks'}: nothing was created there)" in lines[0]
        )
        assert f"FKS_HOME={pg_server.home}" in lines[0]
        assert list(elsewhere.iterdir()) == []

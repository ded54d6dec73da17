"""The environment Dagster and dbt need to reach the platform (its database URLs, DAGSTER_HOME ...), set in this
process so that what it starts (a code server, a run, dbt, `dg dev`) inherits it."""

from __future__ import annotations

import os

from fks_pipelines.lib.db.platform import platform_env
from fks_pipelines.settings import Settings


def apply_env(settings: Settings) -> dict[str, str]:
    """The platform's environment (the embedded server started on demand), exported into ``os.environ``."""
    env = platform_env(settings)
    os.environ.update(env)
    return env

"""``python -m fks_pipelines.cli``: the same as ``fks``."""

from fks_pipelines.cli import run

run()

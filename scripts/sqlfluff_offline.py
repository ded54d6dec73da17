"""`sqlfluff` over the dbt project without a database (`make lint` runs in CI before any server exists).

sqlfluff's dbt templater compiles each model with dbt, and before the first one it lists every schema's relations
(``BaseAdapter.set_relations_cache``), which opens a connection. Nothing else needs one: the models' macros answer
without a database when the dbt var ``fks_offline`` is set (``.sqlfluff`` sets it: the full-refresh, plain-PostgreSQL
SQL). So this runs sqlfluff's command line with that one listing skipped; dbt's connection stays unopened (it opens
lazily), and a macro that did query would still fail loudly ("dbt tried to connect to the database").

Usage, as sqlfluff's: ``python scripts/sqlfluff_offline.py lint dbt_project`` (or ``fix``).
"""

from __future__ import annotations

import sys

from dbt.adapters.base.impl import BaseAdapter
from sqlfluff.cli.commands import cli


def _no_relations_cache(self, *args, **kwargs) -> None:
    """No listing of the database's relations: the linted SQL must not depend on them."""


if __name__ == "__main__":
    BaseAdapter.set_relations_cache = _no_relations_cache  # type: ignore[method-assign]
    sys.exit(cli())

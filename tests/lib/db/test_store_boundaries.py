"""One store per schema (issue 23): the SQL in ``lib/db/<schema>.py`` names only its own schema's tables (another
layer's rows are read through that layer's store), and no store builds tables: DDL lives in the migrations."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from fks_pipelines.lib.db import analytics

STORES = Path(analytics.__file__).parent
SCHEMAS = ("raw", "staging", "intermediate", "marts", "analytics", "knowledge", "recommendations", "portfolio")
TABLE = re.compile(rf"\b({'|'.join(SCHEMAS)})\.([a-z_]+)")
DDL = re.compile(r"\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|FUNCTION|VIEW|SCHEMA|OR REPLACE)\b", re.I)


def sql_strings(path: Path) -> list[str]:
    """The module's string literals (f-string parts included), docstrings left out: the statements it runs."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.parametrize("schema", ["raw", "marts", "analytics", "knowledge", "recommendations", "portfolio"])
def test_a_store_s_statements_name_only_its_own_schema(schema):
    strings = sql_strings(STORES / f"{schema}.py")
    foreign = sorted({m.group(0) for s in strings for m in TABLE.finditer(s) if m.group(1) != schema})
    assert foreign == []
    assert any(f"{schema}." in s for s in strings)  # the check reads the statements it means to


@pytest.mark.parametrize("schema", ["marts", "analytics", "knowledge", "recommendations", "portfolio"])
def test_a_store_builds_no_table(schema):
    assert [s for s in sql_strings(STORES / f"{schema}.py") if DDL.search(s)] == []

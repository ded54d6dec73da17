"""Thin assets (issue 23): every asset and check body in defs/<layer>/ reads through resources, calls lib/, stores
and builds metadata, in at most ``MAX_BODY_LINES`` lines; no body reads the settings (resources carry them); and no
layer imports another (what layers share lives in defs/shared.py or lib/). Read from the source, without Dagster.

    .venv/bin/python -m tests.defs.test_thin_assets   # prints each body's line count on one line
"""

from __future__ import annotations

import ast
from pathlib import Path

DEFS = Path(__file__).resolve().parents[2] / "fks_pipelines" / "defs"
MAX_BODY_LINES = 60
DECORATORS = {"asset", "multi_asset", "asset_check", "multi_asset_check", "dbt_assets"}


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def asset_bodies() -> dict[str, ast.FunctionDef]:
    """Every function under defs/ decorated as an asset, multi-asset or check, keyed layer.name."""
    out = {}
    for path in sorted(DEFS.glob("*/*.py")):
        tree = ast.parse(path.read_text())
        # Bodies an asset factory decorates by call, ``asset(...)(one_run_at_a_time(_body))``: keyed without the "_".
        wrapped = {
            name.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Call)
            and _decorator_name(node.func) in DECORATORS
            for arg in node.args
            for name in ast.walk(arg)
            if isinstance(name, ast.Name)
        }
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and (
                node.name in wrapped or any(_decorator_name(d) in DECORATORS for d in node.decorator_list)
            ):
                out[f"{path.parent.name}.{node.name.lstrip('_')}"] = node
    return out


def body_lines(fn: ast.FunctionDef) -> int:
    """Lines from the first statement after the docstring to the function's end."""
    first = fn.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and len(fn.body) > 1
    body = fn.body[1:] if docstring else fn.body
    assert fn.end_lineno is not None
    return fn.end_lineno - body[0].lineno + 1


def test_the_scan_finds_the_layers_assets():
    names = set(asset_bodies())
    assert {
        "raw.binance_klines",
        "analytics.strategy_choices",
        "analytics.signals",
        "knowledge.documents",
        "recommendations.daily_recommendations",
        "recommendations.evaluation",
        "portfolio.profit_splits",
    } <= names


def test_every_asset_body_is_thin():
    long = {name: n for name, fn in asset_bodies().items() if (n := body_lines(fn)) > MAX_BODY_LINES}
    assert not long, f"asset bodies over {MAX_BODY_LINES} lines: {long}; move the domain work to lib/"


def test_no_asset_body_reads_the_settings():
    readers = [
        name
        for name, fn in asset_bodies().items()
        for statement in fn.body
        for node in ast.walk(statement)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "settings"
    ]
    assert not readers, f"settings() read inside {readers}: carry the value on a resource"


def test_no_layer_imports_another():
    layers = {p.name for p in DEFS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    crossings = []
    for path in sorted(DEFS.glob("*/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fks_pipelines.defs."):
                other = node.module.split(".")[2]
                if other in layers and other != path.parent.name:
                    crossings.append(f"{path.relative_to(DEFS)} imports {node.module}")
    assert not crossings, crossings


if __name__ == "__main__":
    print(" ".join(f"{name}={body_lines(fn)}" for name, fn in asset_bodies().items()))

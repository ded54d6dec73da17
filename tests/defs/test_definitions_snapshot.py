"""The code location's shape, checked in: asset keys with their groups, asset checks, jobs, schedules and
sensors. A change to any of them fails this test until the snapshot is regenerated and reviewed with the code:

    .venv/bin/python -m tests.defs.test_definitions_snapshot   # rewrites tests/defs/definitions_snapshot.yaml
"""

from __future__ import annotations

from pathlib import Path

import yaml

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.yaml")


def definitions_shape() -> dict:
    from fks_pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {
        key.to_user_string(): graph.get(key).group_name
        for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
        if graph.get(key).is_materializable
    }
    checks: dict[str, list[str]] = {}
    for check in sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name)):
        checks.setdefault(check.asset_key.to_user_string(), []).append(check.name)
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")),
        "schedules": {
            s.name: f"{s.cron_schedule} -> {s.job_name}" for s in sorted(defs.schedules or [], key=lambda s: s.name)
        },
        "sensors": sorted(s.name for s in defs.sensors or []),
    }


def test_definitions_match_the_reviewed_snapshot():
    current = definitions_shape()
    reviewed = yaml.safe_load(SNAPSHOT.read_text())
    assert current == reviewed, "definitions changed: review, then run `python -m tests.defs.test_definitions_snapshot`"


def test_every_asset_group_is_its_key_prefix():
    """One word per layer: the group of every asset is the first part of its key (raw/..., marts/..., ...)."""
    for key, group in definitions_shape()["assets"].items():
        assert key.split("/", 1)[0] == group, key


def test_every_group_has_its_folder():
    """...and its code: dbt's layers in dbt_project/models/<layer>, the platform's in fks_pipelines/defs/<layer>."""
    from fks_pipelines.defs.shared import DBT_LAYERS, LAYERS

    root = Path(__file__).resolve().parents[2]
    groups = set(definitions_shape()["assets"].values())
    assert groups == set(LAYERS)
    for layer in LAYERS:
        folder = (
            root / "dbt_project" / "models" / layer if layer in DBT_LAYERS else root / "fks_pipelines" / "defs" / layer
        )
        assert folder.is_dir(), folder


def test_every_platform_layer_is_a_schema(conn):
    """...and its tables: the platform's layers are schemas of the same name (dbt's are created by dbt)."""
    from fks_pipelines.defs.shared import DBT_LAYERS, LAYERS

    schemas = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
    assert {layer for layer in LAYERS if layer not in DBT_LAYERS} <= schemas


if __name__ == "__main__":
    SNAPSHOT.write_text(
        "# The code location's shape (tests/defs/test_definitions_snapshot.py); regenerate after a reviewed change.\n"
        + yaml.safe_dump(definitions_shape(), sort_keys=False, width=120)
    )

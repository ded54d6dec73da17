"""How dbt nodes appear in Dagster: one lineage graph from the raw asset through the marts."""

from collections.abc import Mapping
from typing import Any

from dagster import AssetCheckSpec, AssetKey, AssetSpec
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from fks_pipelines.defs.shared import DBT_LAYERS, OWNERS


class FksDbtTranslator(DagsterDbtTranslator):
    """dbt sources map to the assets that land them (``raw.binance_klines`` -> ``raw/binance_klines``);
    models get the key ``<schema>/<name>`` and the group of their layer, so the UI groups assets by layer; a dbt
    test's ``description:`` (dbt_project YAML) is its check's description in the UI."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=True))

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec.replace_attributes(key=AssetKey([props["source_name"], props["name"]]))
        layer = next((part for part in props.get("fqn", []) if part in DBT_LAYERS), None)
        if layer is None:
            return spec
        return spec.replace_attributes(
            key=AssetKey([layer, props["name"]]),
            group_name=layer,
            kinds={"dbt", "postgres"},
            owners=OWNERS,
        )

    def get_asset_check_spec(
        self, asset_spec: AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetCheckSpec | None:
        # dagster-dbt 0.29 reads a check's description from the test's meta only; dbt (1.9+) has a description
        # property on data tests, which is where the project writes it.
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        return spec._replace(description=manifest["nodes"][unique_id].get("description") or None)

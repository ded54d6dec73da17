"""Backfills submitted through the instance and the workspace's code location (fks_pipelines/runs.py)."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import AssetKey, instance_for_test

from fks_pipelines.runs import BACKFILL_KEY_TAG, backfill_key, submit_backfill, workspace_context


@pytest.mark.slow  # loads the code location (every layer's definitions): seconds of CPU
def test_a_backfill_targets_every_day_of_the_range_and_the_same_arguments_resume_it(monkeypatch):
    monkeypatch.setenv("FKS_PARTITIONS_START", "2021-01-01")
    with instance_for_test() as instance, workspace_context(instance) as process_context:
        start, end = date(2021, 1, 1), date(2021, 1, 10)
        backfill_id = submit_backfill(instance, process_context, start, end, ["BTCUSDT", "ETHUSDT"])
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None and backfill.tags[BACKFILL_KEY_TAG] == backfill_key(
            start, end, ["ETHUSDT", "BTCUSDT"]
        )
        target = backfill.asset_backfill_data.target_subset
        days = {f"2021-01-{d:02d}" for d in range(1, 11)}
        for key in (["analytics", "signals"], ["recommendations", "daily"], ["knowledge", "documents"]):
            assert set(target.get_partitions_subset(AssetKey(key)).get_partition_keys()) == days
        assert AssetKey(["analytics", "strategy_choices"]) in target.non_partitioned_asset_keys
        # The same arguments while it is unfinished: the same backfill (a killed `fks backfill` resumes it).
        assert submit_backfill(instance, process_context, start, end, ["BTCUSDT", "ETHUSDT"]) == backfill_id
        assert submit_backfill(instance, process_context, start, end, ["BTCUSDT"]) != backfill_id

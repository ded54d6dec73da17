"""Does a run need a GPU? Decided from what the run executes, not from its tags alone: backfills and
automation runs drop job-level tags (dagster-io/dagster#26720, #22865), but every run has an execution plan
snapshot listing the steps it will run, and each step carries its op's tags and pool."""

from __future__ import annotations

from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun

from fks_pipelines.defs.shared import GPU_POOL, GPU_TAG_KEY, GPU_TAGS


def gpu_steps(instance: DagsterInstance, run: DagsterRun) -> list[str]:
    """Keys of the run's steps that carry the GPU marker (the op tag or the GPU pool)."""
    if not run.execution_plan_snapshot_id:
        return []
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    selected = set(run.step_keys_to_execute or plan.step_keys_to_execute or [s.key for s in plan.steps])
    return sorted(
        s.key
        for s in plan.steps
        if s.key in selected and ((s.tags or {}).get(GPU_TAG_KEY) == GPU_TAGS[GPU_TAG_KEY] or s.pool == GPU_POOL)
    )


def run_needs_gpu(instance: DagsterInstance, run: DagsterRun) -> bool:
    return run.tags.get(GPU_TAG_KEY) == GPU_TAGS[GPU_TAG_KEY] or bool(gpu_steps(instance, run))


def gpu_run_tags(instance: DagsterInstance, run: DagsterRun) -> dict[str, str]:
    """The GPU tag a run gets on submission (the run coordinator, the demo): ``GPU_TAGS`` when it executes a GPU
    step and the instance's launcher can reach a GPU, else none. On a CPU-only instance (no FKS_GPUS: laptops,
    CI, the demo) every step runs on the CPU, so the tag would say what is not true, and its concurrency
    limit would queue such runs one at a time for a GPU that does not exist."""
    from fks_pipelines.launchers.gpu import GpuRoutingRunLauncher

    launcher = instance.run_launcher
    reachable = isinstance(launcher, GpuRoutingRunLauncher) and launcher.gpu_reachable
    return dict(GPU_TAGS) if reachable and gpu_steps(instance, run) else {}

"""Runs and backfills submitted through the Dagster instance and the workspace's code location, as the UI submits
them (so they show on the job, run and backfill pages and re-execute against the same code). Used by `fks demo`
(one run over a range of partitions) and `fks backfill` (a real Dagster asset backfill).

Without a daemon (only `fks dev` runs one), :func:`drive_backfill` does the daemon's work in this process: the
backfill daemon's iteration (which plans the backfill's runs and submits them to the run queue) and the queued run
coordinator's iteration (which launches them); with a live daemon it only watches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from fks_pipelines.settings import PROJECT_ROOT

BACKFILL_KEY_TAG = "fks/backfill_key"  # the arguments of `fks backfill`: a second call with the same ones resumes
TERMINAL = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")


@contextmanager
def workspace_context(instance) -> Iterator[Any]:
    """The workspace of workspace.yaml (the one code location) loaded against ``instance``."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    target = WorkspaceFileTarget(paths=[str(PROJECT_ROOT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target) as process_context:
        yield process_context


def run_on_code_location(instance, job_name: str, tags: dict[str, str], run_config: dict, poll_s: float = 1.0):
    """Create ``job_name``'s run from the workspace's code location (workspace.yaml) and launch it through the
    instance's run launcher, as the UI's Launch button does; wait for it to end and return the finished run.

    The run therefore carries a code-location origin: it is on the job's page and the timeline, and
    re-executes from the UI against the same code. It is launched rather than queued because the queue is
    served by the daemon, which `fks dev` runs and `fks demo` does not.
    """
    import click

    from fks_pipelines.launchers.routing import gpu_run_tags

    with workspace_context(instance) as process_context:
        workspace = process_context.create_request_context()
        (location_name,) = workspace.code_location_names
        location = workspace.get_code_location(location_name)
        (repo,) = location.get_repositories().values()
        remote_job = repo.get_full_job(job_name)
        plan = location.get_execution_plan(
            remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=instance
        )
        run = instance.create_run(
            job_name=job_name,
            run_id=None,
            run_config=run_config,
            resolved_op_selection=None,
            step_keys_to_execute=None,
            op_selection=None,
            status=None,
            root_run_id=None,
            parent_run_id=None,
            tags={**remote_job.tags, **tags},
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=None,
            asset_check_selection=None,
            asset_graph=repo.asset_graph,
        )
        if gpu_tags := gpu_run_tags(instance, run):  # what the run coordinator adds on submission (dagster.yaml)
            instance.add_run_tags(run.run_id, gpu_tags)
        instance.launch_run(run.run_id, workspace)
        click.echo(f"  dagster run {run.run_id} launched on code location {location_name}; waiting for it to end")
        while True:
            run = instance.get_run_by_id(run.run_id)
            if run.is_finished:
                return run
            time.sleep(poll_s)


def backfill_key(start: date, end: date, symbols: list[str]) -> str:
    """What identifies a backfill's arguments (a second `fks backfill` with the same ones resumes it)."""
    return hashlib.sha256(f"{start}|{end}|{','.join(sorted(symbols))}".encode()).hexdigest()[:16]


def days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def submit_backfill(instance, process_context, start: date, end: date, symbols: list[str]) -> str:
    """An asset backfill of every asset (``all_assets_job``'s selection) over the days [start, end] (the
    unpartitioned assets once), recorded on the instance as the UI's Launch backfill records one; returns its
    id. An unfinished backfill with the same arguments is returned instead of a new one (resume)."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._time import get_current_timestamp

    key = backfill_key(start, end, symbols)
    for existing in instance.get_backfills(status=BulkActionStatus.REQUESTED):
        if existing.tags.get(BACKFILL_KEY_TAG) == key:
            if not _abandon_dead_runs(instance, existing.backfill_id):
                return existing.backfill_id  # its runs are alive or done: go on with it
            # A run of it died with the process that drove it (SIGKILL): an asset backfill never retries a failed
            # run, so it is canceled and a new one covers the range again (every asset is idempotent).
            instance.update_backfill(existing.with_status(BulkActionStatus.CANCELED))
    workspace = process_context.create_request_context()
    asset_graph = workspace.asset_graph
    selection = sorted(asset_graph.materializable_asset_keys)  # all_assets_job: every layer's assets
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=asset_graph,
        partition_names=days(start, end),
        asset_selection=selection,
        backfill_timestamp=get_current_timestamp(),
        tags={BACKFILL_KEY_TAG: key, "fks/symbols": ",".join(symbols)},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=f"fks backfill {start} .. {end}",
        description=f"{start} .. {end}, {', '.join(symbols)} (fks backfill)",
        run_config={"execution": {"config": {"in_process": {}}}},
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def _run_pids(instance, run_id: str) -> list[int]:
    """The process ids the run's engine events name (the run worker and its step processes)."""
    from dagster import DagsterEventType

    pids = []
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data if event else None
        pid = getattr(data, "metadata", {}).get("pid") if data else None
        if pid is not None:
            pids.append(int(pid.value))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandon_dead_runs(instance, backfill_id: str, wait_s: float = 600.0) -> bool:
    """Wait for the backfill's unfinished runs whose process is still alive; mark those whose process is gone as
    failed. True when any was."""
    from dagster import RunsFilter
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    deadline = time.monotonic() + wait_s
    abandoned = False
    for run in instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id})):
        if run.is_finished or run.status.value == "QUEUED":
            continue
        while any(_alive(p) for p in _run_pids(instance, run.run_id)) and time.monotonic() < deadline:
            time.sleep(2)
        run = instance.get_run_by_id(run.run_id)
        if not run.is_finished:
            instance.report_run_failed(run, "its process ended without finishing the run (fks backfill resumes)")
            abandoned = True
    return abandoned


def _daemon_live(instance) -> bool:
    from dagster._daemon.controller import get_daemon_statuses

    try:
        statuses = get_daemon_statuses(instance, ["BACKFILL", "QUEUED_RUN_COORDINATOR"], ignore_errors=True)
    except Exception:  # no heartbeat table, or no daemon ever ran: nothing watches
        return False
    return all(s.healthy for s in statuses.values())


def drive_backfill(
    instance, process_context, backfill_id: str, on_step: Callable[[str], None], poll_s: float = 1.0
) -> str:
    """Make the backfill progress until it ends (this process does the daemon's work unless a daemon is live);
    ``on_step`` gets one line per finished step of its runs. Returns the backfill's final status name."""
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter
    from dagster._core.storage.tags import BACKFILL_ID_TAG
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    logger = logging.getLogger("fks.backfill")
    logger.setLevel(logging.WARNING)
    watch_only = _daemon_live(instance)
    queue = QueuedRunCoordinatorDaemon(interval_seconds=poll_s)
    seen: set[int] = set()
    while True:
        if not watch_only:
            list(execute_backfill_iteration(process_context, logger))
            list(queue.run_iteration(process_context))
        runs = instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
        for run in runs:
            for kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                for record in instance.get_records_for_run(run.run_id, of_type=kind).records:
                    if record.storage_id not in seen:
                        seen.add(record.storage_id)
                        ok = "done" if kind == DagsterEventType.STEP_SUCCESS else "FAILED"
                        on_step(f"{record.event_log_entry.step_key}: {ok} (run {run.run_id[:8]})")
        backfill = instance.get_backfill(backfill_id)
        if backfill.status.value in TERMINAL and all(r.is_finished for r in runs):
            return backfill.status.value
        if not watch_only and any(r.status == DagsterRunStatus.FAILURE for r in runs) and not backfill:
            return "FAILED"
        time.sleep(poll_s)


def backfill_every_asset(
    start: date,
    end: date,
    symbols: list[str],
    on_step: Callable[[str], None],
    on_submitted: Callable[[str], None] | None = None,
) -> tuple[str, str]:
    """`fks backfill`: submit (or resume) the backfill of every asset over [start, end] on the platform's instance
    (DAGSTER_HOME, the environment already set) and drive it to its end; (its id, its final status). Meanwhile the
    code server and the runs' processes, which inherit this process's stdout, write to stderr instead, so stdout
    keeps only the caller's result."""
    import sys

    from dagster import DagsterInstance

    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with DagsterInstance.get() as instance, workspace_context(instance) as process_context:
            backfill_id = submit_backfill(instance, process_context, start, end, symbols)
            if on_submitted:
                on_submitted(backfill_id)
            return backfill_id, drive_backfill(instance, process_context, backfill_id, on_step)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)

"""``GpuAwareRunCoordinator``: the queued run coordinator, plus the GPU tag on every run that executes a GPU
step, whichever way it was started (job, backfill, sensor, automation), when the run launcher can reach a GPU
(``gpu_run_tags``). A tag concurrency limit on that tag (``concurrency.runs.tag_concurrency_limits`` in
dagster.yaml) then queues GPU runs beyond the number of GPUs."""

from dagster._core.errors import DagsterRunNotFoundError
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

from fks_pipelines.launchers.routing import gpu_run_tags


class GpuAwareRunCoordinator(QueuedRunCoordinator):
    def submit_run(self, context: SubmitRunContext):
        run = context.dagster_run
        tags = gpu_run_tags(self._instance, run)
        if tags and not all(run.tags.get(k) == v for k, v in tags.items()):
            self._instance.add_run_tags(run.run_id, tags)
            tagged = self._instance.get_run_by_id(run.run_id)
            if tagged is None:
                raise DagsterRunNotFoundError(
                    f"run {run.run_id} vanished while being tagged", invalid_run_id=run.run_id
                )
            context = SubmitRunContext(tagged, context.workspace)
        return super().submit_run(context)

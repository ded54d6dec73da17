"""``GpuAwareRunCoordinator``: the queued run coordinator, plus the GPU tag on every run that executes a GPU
step, whichever way it was started (job, backfill, sensor, automation). A tag concurrency limit on that tag
(``concurrency.runs.tag_concurrency_limits`` in dagster.yaml) then queues GPU runs beyond the number of GPUs."""

from dagster._core.errors import DagsterRunNotFoundError
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

from fks_pipelines.defs.shared import GPU_TAGS
from fks_pipelines.launchers.routing import gpu_steps


class GpuAwareRunCoordinator(QueuedRunCoordinator):
    def submit_run(self, context: SubmitRunContext):
        run = context.dagster_run
        if gpu_steps(self._instance, run) and not all(run.tags.get(k) == v for k, v in GPU_TAGS.items()):
            self._instance.add_run_tags(run.run_id, GPU_TAGS)
            tagged = self._instance.get_run_by_id(run.run_id)
            if tagged is None:
                raise DagsterRunNotFoundError(
                    f"run {run.run_id} vanished while being tagged", invalid_run_id=run.run_id
                )
            context = SubmitRunContext(tagged, context.workspace)
        return super().submit_run(context)

"""Step executors that put GPU steps, and only those, on a GPU (``FKS_EXECUTOR``).

- ``k8s``: dagster-k8s's own ``k8s_job_executor``. Each step is a pod; a GPU step's op tag ``dagster-k8s/config``
  (``GPU_OP_TAGS`` in defs/shared.py) gives that pod an ``nvidia.com/gpu`` limit, the GPU node selector and the
  taint's toleration. No custom code: Dagster's per-op config does the routing.
- ``docker``: dagster-docker's ``docker_executor`` has no per-op container config, so ``gpu_docker_executor`` is
  that executor with one change: a step carrying the GPU marker gets an NVIDIA device request
  (``docker run --gpus 1``); every other step starts without one.
- ``default``: Dagster's default executor (processes of the run worker); GPU placement is then the run
  launcher's (launchers/gpu.py, local mode with ``FKS_GPUS``).
Op tags travel with steps, so a backfill or an automation run keeps the routing without any run tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import ExecutorDefinition
from dagster._core.executor.base import Executor
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.step_delegating import StepDelegatingExecutor
from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext

from fks_pipelines.defs.shared import GPU_TAG_KEY, GPU_TAGS

GPU_DEVICE_REQUEST = {"Driver": "nvidia", "Count": 1, "Capabilities": [["gpu"]]}


def is_gpu_step(step_tags: Mapping[str, Any] | None) -> bool:
    """A step that wants a GPU: its op carries the GPU marker (defs/shared.py)."""
    return (step_tags or {}).get(GPU_TAG_KEY) == GPU_TAGS[GPU_TAG_KEY]


def step_container_kwargs(step_tags: Mapping[str, Any] | None, base: Mapping[str, Any] | None = None) -> dict:
    """The container kwargs of one step's container: ``base`` plus an NVIDIA device request for a GPU step."""
    kwargs = dict(base or {})
    if is_gpu_step(step_tags):
        kwargs["device_requests"] = [*kwargs.get("device_requests", []), GPU_DEVICE_REQUEST]
    return kwargs


def _step_key(step_handler_context: StepHandlerContext) -> str | None:
    keys = step_handler_context.execute_step_args.step_keys_to_execute or []
    return keys[0] if len(keys) == 1 else None


def _docker_step_handler_class(gpu_image: str | None) -> type:
    from dagster_docker.container_context import DockerContainerContext
    from dagster_docker.docker_executor import DockerStepHandler

    class GpuDockerStepHandler(DockerStepHandler):
        """dagster-docker's step handler; GPU steps get a device request (and the CUDA image, if configured)."""

        def _get_image(self, step_handler_context: StepHandlerContext) -> str:
            step_key = _step_key(step_handler_context)
            if gpu_image and step_key and is_gpu_step(step_handler_context.step_tags.get(step_key)):
                return gpu_image
            return super()._get_image(step_handler_context)

        def _get_docker_container_context(self, step_handler_context: StepHandlerContext):
            context = super()._get_docker_container_context(step_handler_context)
            step_key = _step_key(step_handler_context)
            tags = step_handler_context.step_tags.get(step_key, {}) if step_key else {}
            if not is_gpu_step(tags):
                return context
            return DockerContainerContext(
                registry=context.registry,
                env_vars=context.env_vars,
                networks=context.networks,
                container_kwargs=step_container_kwargs(tags, context.container_kwargs),
            )

    return GpuDockerStepHandler


def _gpu_docker_executor(gpu_image: str | None) -> ExecutorDefinition:
    from dagster_docker import docker_executor
    from dagster_docker.docker_executor import DockerStepHandler

    def create(init_context: InitExecutorContext) -> Executor:
        stock = docker_executor.executor_creation_fn(init_context)  # type: ignore[misc]
        assert isinstance(stock, StepDelegatingExecutor)
        handler = stock._step_handler  # noqa: SLF001 - reuse the stock executor's parsed config
        assert isinstance(handler, DockerStepHandler)
        gpu_handler = _docker_step_handler_class(gpu_image)
        stock._step_handler = gpu_handler(handler._image, handler._container_context)  # noqa: SLF001
        return stock

    return ExecutorDefinition(
        name="docker_gpu",
        config_schema=docker_executor.config_schema.as_field(),
        requirements=docker_executor.get_requirements,
        executor_creation_fn=create,
        description="dagster-docker's docker_executor; GPU-marked steps get an NVIDIA device request.",
    )


def step_executor(kind: str, gpu_image: str | None = None) -> ExecutorDefinition | None:
    """The executor for ``FKS_EXECUTOR`` (None: Dagster's default); ``gpu_image``: ``FKS_GPU_IMAGE``."""
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if kind == "docker":
        return _gpu_docker_executor(gpu_image)
    return None

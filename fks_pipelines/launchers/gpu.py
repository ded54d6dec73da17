"""``GpuRoutingRunLauncher``: one run launcher for ``dagster.yaml`` that sends each run to a GPU launcher when
it executes a GPU-marked step (op tag ``fks/gpu`` or pool ``gpu``, see defs/shared.py) and to the default
launcher otherwise. Upstream Dagster has no such launcher (dagster-io/dagster#11709, #9035, #14539).

GPU modes:
- ``local``: each GPU run is a ``dagster api execute_run`` subprocess pinned to one free GPU through
  ``CUDA_VISIBLE_DEVICES``; slots are ``flock``-ed files inherited by the run's process (slots.py), so they are
  released on success, failure and crash alike; with every GPU busy the launch waits (``wait_seconds``).
- ``docker``: dagster-docker's ``DockerRunLauncher`` with an NVIDIA device request per run.
- ``k8s``: dagster-k8s's ``K8sRunLauncher`` with ``nvidia.com/gpu`` limits, a node selector and tolerations.
Local mode without GPUs (``gpus`` empty, e.g. a laptop): every run goes to the default launcher.
Whole-run routing holds a GPU for the whole run; where steps can run in their own containers or pods, prefer
``FKS_EXECUTOR=docker|k8s`` (launchers/executors.py), which puts only the GPU steps on a GPU.
The run coordinator (coordinator.py) tags GPU runs on submission, so a tag concurrency limit equal to the
number of GPUs queues them before they reach the launcher.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import Field, Permissive, StringSource
from dagster._core.errors import DagsterLaunchFailedError
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster._serdes.config_class import class_from_code_pointer
from dagster_shared.serdes import serialize_value

from fks_pipelines.defs.shared import GPU_NODE_SELECTOR, GPU_TOLERATIONS
from fks_pipelines.launchers.routing import gpu_steps, run_needs_gpu
from fks_pipelines.launchers.slots import GpuSlots
from fks_pipelines.settings import Settings

LAUNCHER_TAG = "fks/launcher"
SLOT_TAG = "fks/gpu_slot"
PID_TAG = "fks/run_pid"


def docker_launcher_config(base: Mapping[str, Any] | None, gpus_per_run: int = 1) -> dict:
    """DockerRunLauncher config with an NVIDIA device request (``docker run --gpus N``)."""
    config = dict(base or {})
    container_kwargs = dict(config.get("container_kwargs") or {})
    container_kwargs["device_requests"] = [{"Driver": "nvidia", "Count": gpus_per_run, "Capabilities": [["gpu"]]}]
    config["container_kwargs"] = container_kwargs
    return config


def k8s_launcher_config(
    base: Mapping[str, Any] | None, gpus_per_run: int = 1, node_selector: Mapping[str, str] | None = None
) -> dict:
    """K8sRunLauncher config: ``nvidia.com/gpu`` limits, a GPU node selector and the GPU taint's toleration."""
    config = dict(base or {})
    run_config = dict(config.get("run_k8s_config") or {})
    container = dict(run_config.get("container_config") or {})
    container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus_per_run)}}
    pod_spec = dict(run_config.get("pod_spec_config") or {})
    pod_spec["node_selector"] = dict(node_selector or GPU_NODE_SELECTOR)
    pod_spec["tolerations"] = list(GPU_TOLERATIONS)
    run_config.update(container_config=container, pod_spec_config=pod_spec)
    config["run_k8s_config"] = run_config
    return config


class LocalGpuLauncher(RunLauncher):
    """Runs each GPU run in a subprocess on this host, pinned to a free GPU slot."""

    def __init__(self, slots: GpuSlots, wait_seconds: float = 600.0):
        self.slots = slots
        self.wait_seconds = wait_seconds
        super().__init__()

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = context.job_code_origin
        if origin is None:
            raise DagsterLaunchFailedError(f"run {run.run_id} has no job code origin to execute in a subprocess")
        slot = self.slots.acquire(self.wait_seconds)
        if slot is None:
            raise DagsterLaunchFailedError(
                f"all {len(self.slots.gpus)} GPU slot(s) stayed busy for {self.wait_seconds:g}s"
            )
        try:
            args = ExecuteRunArgs(job_origin=origin, run_id=run.run_id, instance_ref=self._instance.get_ref())
            env = dict(os.environ, CUDA_VISIBLE_DEVICES=slot.gpu)
            process = subprocess.Popen(
                [sys.executable, "-m", "dagster", "api", "execute_run", serialize_value(args)],
                env=env,
                pass_fds=[slot.fd],
                start_new_session=True,
            )
        finally:
            slot.close()  # the run's process holds the lock now: released whenever it exits
        self._instance.add_run_tags(run.run_id, {SLOT_TAG: slot.gpu, PID_TAG: str(process.pid)})

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None:
            return False
        pid = int(run.tags.get(PID_TAG, 0))
        if not pid:
            return False
        self._instance.report_run_canceling(run)
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True


class GpuRoutingRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        *,
        gpus: str = "",
        mode: str = "local",
        slot_dir: str | None = None,
        wait_seconds: float = 600.0,
        gpus_per_run: int = 1,
        docker: Mapping | None = None,
        k8s: Mapping | None = None,
        default_launcher: Mapping | None = None,
    ):
        self._inst_data = inst_data
        self.gpus = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else list(Settings.from_env().gpus)
        if mode not in ("local", "docker", "k8s"):
            raise ValueError(f"GPU launcher mode must be local, docker or k8s, not {mode!r}")
        self.mode = mode
        self.slot_dir = Path(slot_dir or os.path.join(os.environ.get("DAGSTER_HOME", "."), "gpu_slots"))
        self.wait_seconds = wait_seconds
        self.gpus_per_run = gpus_per_run
        self.docker, self.k8s, self.default_launcher_config = docker, k8s, default_launcher
        self._default: RunLauncher | None = None
        self._gpu: RunLauncher | None = None
        super().__init__()

    # -- ConfigurableClass ------------------------------------------------------------------------------
    @property
    def inst_data(self):
        return self._inst_data

    @classmethod
    def config_type(cls):
        return {
            "gpus": Field(
                StringSource,
                is_required=False,
                default_value="",
                description=(
                    "GPU ids for CUDA_VISIBLE_DEVICES, comma-separated (default: FKS_GPUS); none: no GPU routing."
                ),
            ),
            "mode": Field(str, is_required=False, default_value="local", description="local | docker | k8s"),
            "slot_dir": Field(
                StringSource,
                is_required=False,
                description="Where local mode keeps its slot locks (default $DAGSTER_HOME/gpu_slots).",
            ),
            "wait_seconds": Field(float, is_required=False, default_value=600.0),
            "gpus_per_run": Field(int, is_required=False, default_value=1),
            "docker": Field(
                Permissive(), is_required=False, description="DockerRunLauncher config (GPU device requests are added)."
            ),
            "k8s": Field(
                Permissive(),
                is_required=False,
                description="K8sRunLauncher config (GPU limits, node selector, tolerations added).",
            ),
            "default_launcher": Field(
                Permissive(),
                is_required=False,
                description="{module, class, config} for non-GPU runs (default: DefaultRunLauncher).",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    # -- routing ----------------------------------------------------------------------------------------
    @property
    def gpu_reachable(self) -> bool:
        """Local mode: GPUs configured (FKS_GPUS); docker and k8s modes: the device request or the GPU node pool,
        no FKS_GPUS needed."""
        return bool(self.gpus) or self.mode != "local"

    def route(self, run) -> str:
        """'gpu' when the run executes a GPU step and a GPU is reachable, else 'default'."""
        return "gpu" if self.gpu_reachable and run_needs_gpu(self._instance, run) else "default"

    def _launcher(self, route: str) -> RunLauncher:
        if route == "default":
            if self._default is None:
                spec = self.default_launcher_config
                if spec:
                    launcher_class = class_from_code_pointer(spec["module"], spec["class"])
                    if not (issubclass(launcher_class, RunLauncher) and issubclass(launcher_class, ConfigurableClass)):
                        raise ValueError(f"default_launcher {spec['module']}.{spec['class']} is not a run launcher")
                    # dagster types inst_data as required, yet every launcher takes None (no instance YAML)
                    self._default = launcher_class.from_config_value(None, spec.get("config") or {})  # type: ignore[arg-type]
                else:
                    self._default = DefaultRunLauncher()
                self._default.register_instance(self._instance)
            return self._default
        if self._gpu is None:
            if self.mode == "local":
                self._gpu = LocalGpuLauncher(GpuSlots(self.slot_dir, self.gpus), self.wait_seconds)
            elif self.mode == "docker":
                from dagster_docker import DockerRunLauncher

                self._gpu = DockerRunLauncher(**docker_launcher_config(self.docker, self.gpus_per_run))
            else:
                from dagster_k8s import K8sRunLauncher

                self._gpu = K8sRunLauncher.from_config_value(None, k8s_launcher_config(self.k8s, self.gpus_per_run))
            self._gpu.register_instance(self._instance)
        return self._gpu

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        route = self.route(run)
        self._instance.add_run_tags(run.run_id, {LAUNCHER_TAG: route if route == "default" else f"gpu-{self.mode}"})
        if route == "gpu":
            self._instance.report_engine_event(
                f"GPU steps {', '.join(gpu_steps(self._instance, run)) or '(tagged run)'}: "
                f"launching on a GPU ({self.mode})",
                run,
            )
        self._launcher(route).launch_run(context)

    def _route_of(self, run_id: str) -> str:
        run = self._instance.get_run_by_id(run_id)
        return "gpu" if run and run.tags.get(LAUNCHER_TAG, "default").startswith("gpu") else "default"

    def terminate(self, run_id: str) -> bool:
        return self._launcher(self._route_of(run_id)).terminate(run_id)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return False

    def dispose(self) -> None:
        for launcher in (self._default, self._gpu):
            if launcher is not None:
                launcher.dispose()

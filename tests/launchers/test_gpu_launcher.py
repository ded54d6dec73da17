"""The GPU run launcher: routing by what a run executes (however it was started), GPU slots held by the run's
process (released on success and on a kill), a real run launched on a slot, and the Docker and Kubernetes
configurations it generates validated against those launchers' schemas."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._config import process_config
from dagster._core.execution.api import create_execution_plan
from dagster._core.launcher import LaunchRunContext

from fks_pipelines.defs.shared import GPU_TAG_KEY
from fks_pipelines.launchers.gpu import (
    LAUNCHER_TAG,
    SLOT_TAG,
    GpuRoutingRunLauncher,
    docker_launcher_config,
    k8s_launcher_config,
)
from fks_pipelines.launchers.routing import gpu_run_tags, gpu_steps
from fks_pipelines.launchers.slots import GpuSlots
from tests.launchers import gpu_jobs


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as inst:
        yield inst


def create_run(instance, assets: set[str] | None, tags: dict[str, str] | None = None):
    """A run the way each path creates one: a job launch (the job's tags), a backfill or an automation/sensor
    request (an asset selection, the job's tags dropped)."""
    job = gpu_jobs.everything()
    selection = frozenset(AssetKey(a) for a in assets) if assets else None
    subset = job.get_subset(asset_selection=selection) if selection else job
    plan = create_execution_plan(
        gpu_jobs.RECONSTRUCTABLE.get_subset(asset_selection=selection) if selection else gpu_jobs.RECONSTRUCTABLE
    )
    return instance.create_run_for_job(
        subset,
        execution_plan=plan,
        asset_selection=selection,
        tags=tags or {},
        job_code_origin=gpu_jobs.RECONSTRUCTABLE.get_python_origin(),
    )


def launcher(instance, tmp_path, gpus="7,9") -> GpuRoutingRunLauncher:
    routing = GpuRoutingRunLauncher(gpus=gpus, slot_dir=str(tmp_path / "slots"), wait_seconds=0.2)
    routing.register_instance(instance)
    return routing


@pytest.mark.parametrize(
    ("assets", "tags", "route"),
    [
        (None, {"team": "quant"}, "gpu"),  # a job launch: the whole job, job tags
        ({"embeddings"}, {"dagster/backfill": "abc"}, "gpu"),  # a backfill of the GPU asset: no job tags
        ({"embeddings"}, {"dagster/sensor_name": "s"}, "gpu"),  # a sensor / automation run: no job tags
        ({"prices"}, {"dagster/backfill": "abc"}, "default"),  # nothing GPU in it
        ({"prices"}, {GPU_TAG_KEY: "true"}, "gpu"),  # explicitly tagged
    ],
)
def test_runs_are_routed_by_what_they_execute(instance, tmp_path, assets, tags, route):
    run = create_run(instance, assets, tags)
    assert launcher(instance, tmp_path).route(run) == route
    assert launcher(instance, tmp_path, gpus="").route(run) == "default"  # no GPUs configured: nothing routes there
    k8s = GpuRoutingRunLauncher(gpus="", mode="k8s")  # k8s and docker modes need no FKS_GPUS
    k8s.register_instance(instance)
    assert k8s.route(run) == route
    assert bool(gpu_steps(instance, run)) == (assets is None or "embeddings" in assets)


@pytest.mark.parametrize(("gpus", "tagged"), [("", False), ("0", True)])
def test_a_run_is_tagged_for_a_gpu_only_where_one_is_reachable(tmp_path, gpus, tagged):
    """The coordinator's (and the demo's) GPU tag: a CPU-only instance (no FKS_GPUS, local mode) runs every step
    on the CPU, so its runs are not tagged fks/gpu; with a GPU configured, a run with a GPU step is."""
    (tmp_path / "dagster_home").mkdir()
    routing = {"module": "fks_pipelines.launchers.gpu", "class": "GpuRoutingRunLauncher", "config": {"gpus": gpus}}
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home"), overrides={"run_launcher": routing}) as inst:
        run = create_run(inst, None, {"team": "quant"})  # the whole job: the embeddings step included
        assert gpu_steps(inst, run)
        assert gpu_run_tags(inst, run) == ({GPU_TAG_KEY: "true"} if tagged else {})
        assert gpu_run_tags(inst, create_run(inst, {"prices"})) == {}  # nothing GPU in it


def hold(slot) -> subprocess.Popen:
    """A process holding ``slot`` the way a launched run does (the lock inherited with its descriptor)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=[slot.fd])
    slot.close()
    return child


def test_slots_are_held_by_the_runs_processes_and_released_when_they_end(tmp_path):
    slots = GpuSlots(tmp_path / "slots", ["0", "1"])
    first, second = slots.try_acquire(), slots.try_acquire()
    assert (first.gpu, second.gpu) == ("0", "1") and slots.try_acquire() is None
    a, b = hold(first), hold(second)
    try:
        assert (
            slots.busy() == ["0", "1"] and slots.acquire(wait_s=0.3, poll_s=0.05) is None
        )  # all busy: the launch waits
        a.send_signal(signal.SIGKILL)  # a run killed mid-way...
        a.wait()
        third = slots.acquire(wait_s=5, poll_s=0.05)  # ...gives its GPU back
        assert third is not None and third.gpu == "0" and slots.busy() == ["0", "1"]
        third.close()
        b.terminate()
        b.wait()
        assert slots.busy() == []
    finally:
        for child in (a, b):
            if child.poll() is None:
                child.kill()


def test_a_gpu_run_is_launched_on_a_free_slot_and_releases_it(instance, tmp_path, monkeypatch):
    out = tmp_path / "gpu.txt"
    monkeypatch.setenv("FKS_TEST_GPU_OUT", str(out))
    routing = launcher(instance, tmp_path, gpus="7")
    run = create_run(instance, {"embeddings"}, {"dagster/backfill": "abc"})
    routing.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    deadline = time.monotonic() + 120
    while instance.get_run_by_id(run.run_id).status not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE):
        assert time.monotonic() < deadline, "the GPU run did not finish"
        time.sleep(0.5)
    finished = instance.get_run_by_id(run.run_id)
    assert finished.status == DagsterRunStatus.SUCCESS
    assert finished.tags[LAUNCHER_TAG] == "gpu-local" and finished.tags[SLOT_TAG] == "7" and out.read_text() == "7"
    slots = GpuSlots(tmp_path / "slots", ["7"])
    deadline = time.monotonic() + 30  # the run reports success just before its process exits
    while slots.busy() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slots.busy() == []


def test_generated_docker_and_k8s_configs_are_valid_for_those_launchers():
    from dagster_docker import DockerRunLauncher
    from dagster_k8s import K8sRunLauncher

    docker = docker_launcher_config({"image": "fks-pipelines:latest", "env_vars": ["FKS_DATABASE_URL"]}, gpus_per_run=2)
    assert process_config(DockerRunLauncher.config_type(), docker).success
    assert docker["container_kwargs"]["device_requests"] == [
        {"Driver": "nvidia", "Count": 2, "Capabilities": [["gpu"]]}
    ]
    k8s = k8s_launcher_config(
        {"service_account_name": "dagster", "job_namespace": "fks", "instance_config_map": "dagster-instance"}
    )
    assert process_config(K8sRunLauncher.config_type(), k8s).success
    assert k8s["run_k8s_config"]["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert k8s["run_k8s_config"]["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert not process_config(
        DockerRunLauncher.config_type(), {**docker, "container_kwargs": "not a mapping"}
    ).success  # the check bites


def test_the_launcher_and_coordinator_load_from_dagster_yaml(tmp_path, monkeypatch):
    import shutil

    from fks_pipelines.launchers.coordinator import GpuAwareRunCoordinator
    from fks_pipelines.settings import PROJECT_ROOT

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    text = (home / "dagster.yaml").read_text()
    text = text[: text.index("storage:")] + text[text.index("run_coordinator:") :]  # sqlite storage for this test
    (home / "dagster.yaml").write_text(text)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FKS_GPUS", "0,1")
    with DagsterInstance.get() as inst:
        assert isinstance(inst.run_launcher, GpuRoutingRunLauncher) and inst.run_launcher.gpus == ["0", "1"]
        assert isinstance(inst.run_coordinator, GpuAwareRunCoordinator)

"""GPU steps on GPU workers, and only those: on a real Dagster instance, a run's execution plan carries each
step's op tags, and the step executors (docker: a device request; k8s: dagster-k8s's per-op pod config) give a
GPU only to the steps marked for one, however the run was started."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance
from dagster_k8s.job import get_user_defined_k8s_config

from fks_pipelines.defs.shared import GPU_NODE_SELECTOR, GPU_TOLERATIONS
from fks_pipelines.launchers.executors import GPU_DEVICE_REQUEST, is_gpu_step, step_container_kwargs, step_executor
from tests.launchers.test_gpu_launcher import create_run


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as inst:
        yield inst


def step_tags_of(instance, run) -> dict[str, dict]:
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return {step.key: dict(step.tags or {}) for step in plan.steps}


@pytest.mark.parametrize(
    "tags", [{"team": "quant"}, {"dagster/backfill": "abc"}, {"dagster/sensor_name": "new_symbol_sensor"}]
)
def test_gpu_steps_get_a_gpu_and_the_other_steps_do_not(instance, tags):
    run = create_run(instance, None, tags)  # a launch, a backfill or a sensor run of the whole job
    steps = step_tags_of(instance, run)
    assert set(steps) == {"embeddings", "prices"}
    base = {"mem_limit": "4g"}
    docker = {key: step_container_kwargs(t, base) for key, t in steps.items()}
    assert docker["embeddings"] == {"mem_limit": "4g", "device_requests": [GPU_DEVICE_REQUEST]}
    assert docker["prices"] == base  # no GPU for the CPU step
    k8s = {key: get_user_defined_k8s_config(t) for key, t in steps.items()}
    assert k8s["embeddings"].container_config["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert k8s["embeddings"].pod_spec_config["node_selector"] == GPU_NODE_SELECTOR
    assert k8s["embeddings"].pod_spec_config["tolerations"] == GPU_TOLERATIONS
    assert k8s["prices"].container_config == {} and k8s["prices"].pod_spec_config == {}


def test_a_cpu_only_selection_has_no_gpu_step(instance):
    run = create_run(instance, {"prices"}, {"dagster/backfill": "abc"})
    assert not any(is_gpu_step(t) for t in step_tags_of(instance, run).values())


def test_the_platform_marks_only_the_embedding_steps_when_the_llm_is_served_over_http():
    from fks_pipelines.definitions import defs, settings

    assert settings.llm_engine == "http"
    job = defs.resolve_job_def("all_assets_job")
    gpu = {node.name for node in job.graph.node_dict.values() if is_gpu_step(node.tags)}
    # The steps that load the embedding model; recommendations/daily calls vLLM over HTTP: CPU.
    assert gpu == {"knowledge__document_embeddings", "knowledge__record_documents"}
    assert step_executor("k8s").name == "k8s" and step_executor("docker").name == "docker_gpu"
    assert step_executor("default") is None

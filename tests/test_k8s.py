"""docker/k8s/: no cluster here, so the Helm values and the plain manifests are cross-checked against the code:
every variable they set is one the code (or the image's entrypoint) reads, the image is this repository's, every
Secret they name is created by the README's commands with keys the code reads, the GPU placement of the vLLM
Deployment is the one GPU steps get from their op tags, and kubectl renders the manifests offline
(`kubectl kustomize`; `kubectl apply --dry-run=client` needs a reachable API server for its type discovery, even
with --validate=false, so it cannot run here)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from fks_pipelines.defs.shared import GPU_NODE_SELECTOR, GPU_OP_TAGS, GPU_TOLERATIONS
from tests.conftest import PROJECT_ROOT
from tests.test_docker import ENTRYPOINT_VARS, variables_the_code_reads

K8S = PROJECT_ROOT / "docker" / "k8s"
README = (PROJECT_ROOT / "docker" / "README.md").read_text()


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    docs = [d for f in ("fks-config.yaml", "vllm.yaml") for d in yaml.safe_load_all((K8S / f).read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def created_secrets() -> dict[str, set[str]]:
    """The Secrets the README's `kubectl create secret generic NAME --from-literal=KEY=...` commands create."""
    secrets: dict[str, set[str]] = {}
    for command in re.findall(r"kubectl -n fks create secret generic [^\n]+(?:\\\n[^\n]+)*", README):
        name = command.split("generic", 1)[1].split()[0]
        secrets[name] = set(re.findall(r"--from-literal=([A-Za-z0-9_-]+)=", command))
    return secrets


def test_values_use_this_image_an_external_database_and_the_k8s_run_launcher(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["repository"].endswith("/fks-pipelines")
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "fks_pipelines.definitions", "-a", "defs"]
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    daemon = values["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] and daemon["runMonitoring"]["maxRuntimeSeconds"] > 0
    limits = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert any(limit["key"] == "dagster/backfill" for limit in limits)
    compose = yaml.safe_load((PROJECT_ROOT / "docker" / "compose.yaml").read_text())
    assert "fks-pipelines:" in compose["x-fks-image"]["image"]  # one image name in both deployments


def test_every_setting_and_secret_is_one_the_code_reads(values, manifests):
    read = variables_the_code_reads() | ENTRYPOINT_VARS
    config = manifests[("ConfigMap", "fks-config")]["data"]
    assert set(config) <= read, set(config) - read
    assert config["FKS_EXECUTOR"] == "k8s"  # GPU steps get their own pods on the GPU pool
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    for where in (launcher, deployment):
        assert [c["name"] for c in where["envConfigMaps"]] == ["fks-config"]
        assert [s["name"] for s in where["envSecrets"]] == ["fks-secrets"]
    secrets = created_secrets()
    named = {"fks-secrets", values["global"]["postgresqlSecretName"]}
    vllm = manifests[("Deployment", "vllm")]["spec"]["template"]["spec"]["containers"][0]
    refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"]) for e in vllm["env"]}
    named |= {name for name, _ in refs}
    assert named <= set(secrets), named - set(secrets)  # every Secret referenced is created by the README
    assert secrets["fks-secrets"] <= read and "FKS_DB_PASSWORD" in secrets["fks-secrets"]
    assert secrets[values["global"]["postgresqlSecretName"]] == {"postgresql-password"}  # the chart's key
    assert {key for name, key in refs if name == "vllm-secrets"} <= secrets["vllm-secrets"]
    assert not any("PASSWORD" in k or "API_KEY" in k for k in config)  # no secret in the ConfigMap


def test_vllm_runs_where_gpu_steps_run_and_is_reachable_at_the_configured_url(manifests):
    deployment = manifests[("Deployment", "vllm")]["spec"]["template"]
    spec, (container,) = deployment["spec"], deployment["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == GPU_NODE_SELECTOR and spec["tolerations"] == GPU_TOLERATIONS
    step_pod = GPU_OP_TAGS["dagster-k8s/config"]
    assert step_pod["pod_spec_config"] == {"node_selector": GPU_NODE_SELECTOR, "tolerations": GPU_TOLERATIONS}
    assert step_pod["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    compose = yaml.safe_load((PROJECT_ROOT / "docker" / "compose.yaml").read_text())
    assert container["image"] == compose["services"]["vllm"]["image"]  # one pinned vLLM
    assert "--model" not in container["args"] and not container["args"][0].startswith("-")
    service = manifests[("Service", "vllm")]
    assert service["spec"]["selector"] == deployment["metadata"]["labels"]
    url = manifests[("ConfigMap", "fks-config")]["data"]["FKS_LLM_BASE_URL"]
    assert url == f"http://vllm.fks.svc.cluster.local:{service['spec']['ports'][0]['port']}/v1"
    # the README labels and taints the GPU pool exactly as the selectors and tolerations expect
    (label,) = GPU_NODE_SELECTOR.items()
    assert f"{label[0]}={label[1]}" in README and f"{GPU_TOLERATIONS[0]['key']}=present:NoSchedule" in README


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (apt-get install kubectl)")
def test_kubectl_renders_the_manifests_offline():
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered.stdout) if d)
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"]

"""docker/: no Docker engine runs on these machines, so what can be checked without one is: the compose file
parses and wires every service, every variable it passes is one the code reads (and every variable it
interpolates is in .env.example), healthchecks and volumes exist, and the images' entrypoints exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def variables_the_code_reads() -> set[str]:
    """The settings model's variables, and the few others read directly (Dagster's own, such as DAGSTER_HOME)."""
    from fks_pipelines.settings import Settings

    pattern = re.compile(r"""(?:env\.get|environ\.get|EnvVar|env\[|environ\[)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
    direct = {m for path in (PROJECT_ROOT / "fks_pipelines").rglob("*.py") for m in pattern.findall(path.read_text())}
    return direct | {field.validation_alias.choices[0] for field in Settings.model_fields.values()}


def test_compose_wires_every_service_with_healthchecks_and_volumes(compose):
    services = compose["services"]
    assert set(services) == {"db", "code", "webserver", "daemon", "vllm"}
    assert all("healthcheck" in s for s in services.values())
    assert services["db"]["image"].startswith("timescale/timescaledb-ha")  # TimescaleDB + pgvector
    (gpu,) = services["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["webserver"]["depends_on"]["code"]["condition"] == "service_healthy"
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert used == set(compose["volumes"])


def test_every_variable_passed_is_read_by_the_code_and_defined_in_env_example(compose):
    read = variables_the_code_reads()
    assert {"FKS_DATABASE_URL", "FKS_LLM_BASE_URL", "FKS_LLM_API_KEY", "DISCORD_WEBHOOK_URL", "FKS_GPUS"} <= read
    for name in ("code", "webserver", "daemon"):
        env = compose["services"][name]["environment"]
        assert set(env) <= read, set(env) - read
        assert env["FKS_DATABASE_URL"].endswith("@db:5432/fks") and env["FKS_DAGSTER_DATABASE_URL"].startswith(
            "postgresql+psycopg2://"
        )
    text = (DOCKER / "compose.yaml").read_text()
    example = {
        line.split("=", 1)[0]
        for line in (DOCKER / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert set(re.findall(r"\$\{([A-Z0-9_]+)\}", text)) <= example


@pytest.mark.slow
def test_entrypoints_and_copied_paths_exist(compose):
    for name in ("code", "webserver", "daemon"):
        command = compose["services"][name]["command"]
        assert (BIN / command[0]).exists(), command[0]
        check = compose["services"][name]["healthcheck"]["test"][1:]
        if check[0] != "python":
            help_run = subprocess.run(
                [str(BIN / check[0]), *[a for a in check[1:] if not a.startswith("-") and not a.isdigit()], "--help"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert help_run.returncode == 0, help_run.stderr
    for source in re.findall(r"^COPY (\S+)", (DOCKER / "Dockerfile").read_text(), flags=re.M):
        assert (PROJECT_ROOT / source).exists(), source
    code = compose["services"]["code"]["command"]
    module, attribute = code[code.index("-m") + 1], code[code.index("-a") + 1]
    loaded = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(type(m.{attribute}).__name__)"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    assert loaded.stdout.strip() == "Definitions", loaded.stderr
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "code"

"""docker/: no Docker engine (nor the compose plugin) runs on these machines, so what can be checked without one
is: the compose file parses and wires every service; every secret is required (`${VAR:?why}`) and has no usable
value in .env.example; published ports bind to 127.0.0.1 unless FKS_BIND_ADDRESS says otherwise; every variable
passed is one the code (or the entrypoint, or the instance's dagster.yaml) reads; the entrypoint URL-escapes
passwords (checked by logging in to the embedded server with a hostile one); the production instance has run
monitoring and shared compute logs; the image installs its lock before its code and ignores secrets and caches."""

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
SECRETS = ("POSTGRES_PASSWORD", "FKS_DB_PASSWORD", "ANALYST_PASSWORD", "VLLM_API_KEY")
# The variables docker/entrypoint.py turns into the database URLs.
ENTRYPOINT_VARS = {"FKS_DB_HOST", "FKS_DB_PORT", "FKS_DB_USER", "FKS_DB_PASSWORD", "FKS_DB_SSLMODE"}
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:(:\?|:-)([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation for the forms this file uses: ${V}, ${V:-default}, ${V:?error} ($$ is a `$`)."""

    def one(match: re.Match) -> str:
        name, op, arg = match.groups()
        value = env.get(name, "")
        if op == ":?" and not value:
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        return value or (arg if op == ":-" else "")

    return _VAR.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def env_example() -> dict[str, str]:
    lines = (DOCKER / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def filled_env(**overrides: str) -> dict[str, str]:
    env = {k: v or f"{k.lower()}-value" for k, v in env_example().items()}
    return {**env, **overrides}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(interpolate((DOCKER / "compose.yaml").read_text(), filled_env()))


@pytest.fixture(scope="module")
def instance_yaml() -> dict:
    return yaml.safe_load((DOCKER / "dagster.yaml").read_text())


def variables_the_code_reads() -> set[str]:
    """The settings model's variables, and the few others read directly (Dagster's own, such as DAGSTER_HOME)."""
    from fks_pipelines.settings import Settings

    pattern = re.compile(r"""(?:env\.get|environ\.get|EnvVar|env\[|environ\[)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
    direct = {m for path in (PROJECT_ROOT / "fks_pipelines").rglob("*.py") for m in pattern.findall(path.read_text())}
    return direct | {field.validation_alias.choices[0] for field in Settings.model_fields.values()}


def instance_env_vars(instance: dict) -> set[str]:
    """Variables the production dagster.yaml reads (`env: X`) or forwards to run containers."""
    text = yaml.safe_dump(instance)
    return set(re.findall(r"env: ([A-Z][A-Z0-9_]+)", text)) | set(instance["run_launcher"]["config"]["env_vars"])


def test_compose_wires_every_service_with_healthchecks_limits_and_volumes(compose):
    services = compose["services"]
    assert set(services) == {"db", "code", "webserver", "daemon", "backup", "vllm", "proxy"}
    assert all("healthcheck" in s for s in services.values())
    assert services["db"]["image"].startswith("timescale/timescaledb-ha:pg17")  # TimescaleDB + pgvector, pinned
    (gpu,) = services["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["webserver"]["depends_on"]["code"]["condition"] == "service_healthy"
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith((".", "/"))}
    assert used == set(compose["volumes"])
    for name in ("db", "code", "webserver", "daemon", "backup"):  # resource limits on everything of ours
        assert services[name]["deploy"]["resources"]["limits"]["memory"], name
    mounts = {name: {v.split(":")[1] for v in services[name]["volumes"]} for name in ("code", "daemon", "webserver")}
    assert {"/opt/dagster/home", "/opt/dagster/home/dagster.yaml", "/opt/dagster/logs"} <= mounts["daemon"]
    assert {"/opt/dagster/fks", "/opt/dagster/fks/landing"} <= mounts["code"]  # FKS_HOME and the landing folder
    assert "/var/run/docker.sock" in mounts["webserver"]  # Terminate stops a run's container from the UI
    assert services["proxy"]["profiles"] == ["auth"]  # the authenticated UI is opt-in
    assert "fks db backup" in " ".join(services["backup"]["command"])


def test_every_secret_is_required_and_the_example_has_none():
    text = (DOCKER / "compose.yaml").read_text()
    example = env_example()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"(:\?|:-|)", text)
        assert uses and all(op == ":?" for op in uses), (name, uses)
        assert example[name] == "", f"{name} has a usable value in .env.example"
        with pytest.raises(ValueError, match=name):
            interpolate(text, filled_env(**{name: ""}))
    assert not re.search(r"change-me", (DOCKER / ".env.example").read_text())


def test_published_ports_bind_to_localhost_unless_configured(compose):
    text = (DOCKER / "compose.yaml").read_text()
    ports = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert len(ports) == 3  # db, the UI, the proxy
    assert all(p.startswith("127.0.0.1:") for p in ports), ports
    assert "0.0.0.0:" not in text.replace('"-h", "0.0.0.0"', "").replace('"--host", "0.0.0.0"', "")
    elsewhere = yaml.safe_load(interpolate(text, filled_env(FKS_BIND_ADDRESS="100.64.0.7")))
    assert all(p.startswith("100.64.0.7:") for s in elsewhere["services"].values() for p in s.get("ports", []))
    # unset (not in the user's .env): still 127.0.0.1
    bare = {k: v for k, v in filled_env().items() if k != "FKS_BIND_ADDRESS"}
    assert all(p.startswith("127.0.0.1:") for p in yaml.safe_load(interpolate(text, bare))["services"]["db"]["ports"])


def test_every_variable_passed_is_read_and_defined_in_env_example(compose, instance_yaml):
    read = variables_the_code_reads()
    assert {"FKS_LLM_BASE_URL", "FKS_LLM_API_KEY", "DISCORD_WEBHOOK_URL", "FKS_EXECUTOR", "FKS_GPU_IMAGE"} <= read
    from_instance = instance_env_vars(instance_yaml)
    for name in ("code", "webserver", "daemon", "backup"):
        env = compose["services"][name]["environment"]
        assert set(env) <= read | ENTRYPOINT_VARS | from_instance, set(env) - read - ENTRYPOINT_VARS - from_instance
        assert "FKS_DATABASE_URL" not in env and env["FKS_DB_HOST"] == "db"  # the entrypoint builds the URLs
    assert from_instance - {"FKS_IMAGE"} <= read | {"FKS_DATABASE_URL", "FKS_DAGSTER_DATABASE_URL"}
    text = (DOCKER / "compose.yaml").read_text()
    assert set(re.findall(r"\$\{([A-Z0-9_]+)", text)) <= set(env_example())


def test_the_production_instance_monitors_runs_and_shares_compute_logs(compose, instance_yaml):
    monitoring = instance_yaml["run_monitoring"]
    assert monitoring["enabled"] and monitoring["max_runtime_seconds"] > 0
    logs = instance_yaml["compute_logs"]["config"]["base_dir"]
    launcher = instance_yaml["run_launcher"]
    assert launcher["module"] == "dagster_docker" and launcher["class"] == "DockerRunLauncher"
    run_mounts = {v.split(":")[1] for v in launcher["config"]["container_kwargs"]["volumes"]}
    assert logs in run_mounts  # the run containers write where the webserver reads
    for name in ("webserver", "daemon"):
        assert logs in {v.split(":")[1] for v in compose["services"][name]["volumes"]}
    # the run containers' named volumes are compose's (project `fks`)
    for volume in launcher["config"]["container_kwargs"]["volumes"]:
        assert volume.split(":")[0].removeprefix(f"{compose['name']}_") in compose["volumes"]
    assert launcher["config"]["network"] in {n["name"] for n in compose["networks"].values()}
    limits = {(t["key"], t.get("value")) for t in instance_yaml["run_coordinator"]["config"]["tag_concurrency_limits"]}
    assert ("dagster/backfill", None) in limits  # a first boot's backfills are bounded


def test_the_entrypoint_escapes_passwords_that_break_urls(pg_server, tmp_path):
    """A password with @ / : % # ? logs in through the URLs the entrypoint builds (a real server, a real login)."""
    from psycopg.conninfo import conninfo_to_dict

    from fks_pipelines.lib.db.connect import connect

    sys.path.insert(0, str(DOCKER))
    try:
        from entrypoint import database_urls
    finally:
        sys.path.remove(str(DOCKER))
    password = "p@ss/w:rd%40#?&x y"
    admin_url = pg_server.url("postgres")
    admin = conninfo_to_dict(admin_url)
    with connect(admin_url) as conn:
        conn.autocommit = True
        conn.execute("DROP ROLE IF EXISTS fks_escape_probe")
        conn.execute(f"CREATE ROLE fks_escape_probe LOGIN PASSWORD '{password}'")
    try:
        env = {
            "FKS_DB_HOST": str(admin.get("host", "127.0.0.1")),
            "FKS_DB_PORT": str(admin["port"]),
            "FKS_DB_USER": "fks_escape_probe",
            "FKS_DB_PASSWORD": password,
        }
        urls = database_urls(env)
        assert conninfo_to_dict(urls["FKS_DATABASE_URL"])["password"] == password
        assert urls["FKS_DAGSTER_DATABASE_URL"].startswith("postgresql+psycopg2://fks_escape_probe:")
        with connect(urls["FKS_DATABASE_URL"]) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == ("fks_escape_probe", "fks")
        assert database_urls({**env, "FKS_DATABASE_URL": "postgresql://x@h/fks"}) == {}  # an explicit URL wins
    finally:
        with connect(admin_url) as conn:
            conn.autocommit = True
            conn.execute("DROP ROLE IF EXISTS fks_escape_probe")


def test_the_image_installs_its_lock_before_the_code_and_ignores_secrets():
    ignored = set((PROJECT_ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".fks", ".git", "**/__pycache__", "docker/.env"} <= ignored
    dockerfile = (DOCKER / "Dockerfile").read_text()
    lock = dockerfile.index("pip install --no-cache-dir -r docker/requirements.lock")
    assert lock < dockerfile.index("COPY fks_pipelines") < dockerfile.index("--no-deps .")
    assert 'download.pytorch.org/whl/${TORCH_VARIANT}"' in dockerfile and "ARG TORCH_VARIANT=cpu" in dockerfile
    pins = [line for line in (DOCKER / "requirements.lock").read_text().splitlines() if not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", p) for p in pins), pins[:3]
    assert "torch==2.13.0" in pins  # no +cpu / +cu suffix: the variant's index decides
    vllm = yaml.safe_load(interpolate((DOCKER / "compose.yaml").read_text(), filled_env()))["services"]["vllm"]
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", vllm["image"])  # pinned, not :latest
    assert "--model" not in vllm["command"] and vllm["command"][0] == filled_env()["VLLM_MODEL"]
    assert "--api-key" not in vllm["command"]  # the key comes from VLLM_API_KEY, not the process list


@pytest.mark.slow
def test_entrypoints_and_copied_paths_exist(compose):
    for name in ("code", "webserver"):
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

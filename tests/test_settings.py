"""The one settings model: every variable validated with a one-line error, read nowhere else, documented from
the model itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date

import pytest

from fks_pipelines.lib.db.platform import platform_env
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.settings import (
    Settings,
    configuration_markdown,
    record_partitions_start,
    recorded_settings_file,
    settings,
)
from tests.conftest import PROJECT_ROOT

BAD = {
    "FKS_PG_PORT": "abc",
    "FKS_SYMBOLS": "BTC'; DROP TABLE raw.binance_klines;--",
    "FKS_TIMESCALEDB": "maybe",
    "FKS_SCHEDULE_TIME": "25:00",
    "FKS_INTERVAL": "99999999999999999999m",
    "FKS_PARTITIONS_START": "yesterday",
    "FKS_MARKET": "options",
    "FKS_LOCK_TIMEOUT": "inf",
    "FKS_ANALYST_WORK_MEM": "8 gigs",
    "FKS_LLM_MAX_ATTEMPTS": "0",
    "FKS_EMBEDDING_DEVICE": "tpu",
    "FKS_GAP_WINDOW_DAYS": "-1",
}


@pytest.mark.parametrize("variable, value", BAD.items(), ids=BAD.keys())
def test_a_bad_value_is_one_line_naming_the_variable(variable, value):
    with pytest.raises(BadInputError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert "\n" not in message and variable in message and repr(value) in message


def test_the_process_environment_and_a_mapping_give_the_same_settings(monkeypatch):
    env = {"FKS_SYMBOLS": "btcusdt, ethusdt", "FKS_PG_PORT": "6000", "FKS_AUTOMATION": "on", "FKS_TIMESCALEDB": "off"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from_process = Settings.from_env()
    assert from_process == Settings.from_env({**env, "FKS_HOME": str(from_process.home)})
    assert from_process.symbols == ("BTCUSDT", "ETHUSDT") and from_process.pg_port == 6000
    assert from_process.automation and not from_process.timescaledb
    assert from_process.landing_dir == from_process.home / "landing"


def test_a_demo_records_its_first_day_as_the_homes_partition_start_below_the_environment(tmp_path, monkeypatch):
    """The partitions start with the data: a home's recorded start (what `fks demo` loaded) replaces the
    2020-01-01 default, an earlier demo's day is kept, and an exported FKS_PARTITIONS_START still wins."""
    home = tmp_path / "home"
    env = {"FKS_HOME": str(home)}
    assert Settings.from_env(env).partitions_start == "2020-01-01"
    assert record_partitions_start(home, date(2026, 10, 26)) == date(2026, 10, 26)
    assert Settings.from_env(env).partitions_start == "2026-10-26"
    assert "partitions_start" in Settings.from_env(env).model_fields_set
    assert record_partitions_start(home, date(2026, 11, 20)) == date(2026, 10, 26)  # a later demo keeps its days
    assert record_partitions_start(home, date(2026, 9, 1)) == date(2026, 9, 1)  # a longer one reaches back
    assert Settings.from_env(env).partitions_start == "2026-09-01"
    assert Settings.from_env(env, recorded=False).partitions_start == "2020-01-01"
    assert Settings.from_env({**env, "FKS_PARTITIONS_START": "2024-01-01"}).partitions_start == "2024-01-01"
    # The process environment reads the same file (the code server started by `fks dev` has only FKS_HOME).
    monkeypatch.setenv("FKS_HOME", str(home))
    monkeypatch.delenv("FKS_PARTITIONS_START", raising=False)
    assert Settings.from_env().partitions_start == "2026-09-01"
    monkeypatch.setenv("FKS_PARTITIONS_START", "2025-05-05")
    assert Settings.from_env().partitions_start == "2025-05-05"
    # A bad recorded value is the one-line settings error naming the variable.
    recorded_settings_file(home).write_text("FKS_PARTITIONS_START=someday\n")
    with pytest.raises(BadInputError, match="FKS_PARTITIONS_START='someday'"):
        Settings.from_env(env)


def test_the_definitions_settings_ignore_a_recorded_start_that_fks_passes_on(tmp_path, monkeypatch):
    """Only `fks` reads what a demo recorded: it exports it to the Dagster processes it starts (`platform_env`),
    while `settings()`, which the definitions are built from at import, reads the process environment alone."""
    home = tmp_path / "home"
    monkeypatch.setenv("FKS_HOME", str(home))
    monkeypatch.setenv("FKS_DATABASE_URL", "postgresql://fks:secret@127.0.0.1:9/fks")  # named, never reached
    assert "FKS_PARTITIONS_START" not in platform_env(Settings.from_env(), start=False)
    record_partitions_start(home, date(2026, 11, 4))
    assert settings().partitions_start == "2020-01-01"
    assert Settings.from_env().partitions_start == "2026-11-04"
    passed_on = platform_env(Settings.from_env(), start=False)
    assert passed_on["FKS_PARTITIONS_START"] == "2026-11-04" and passed_on["FKS_HOME"] == str(home)


# What a test module sees after the test session's conftest: the definitions' partition starts and the session's
# home and port. Run in a fresh interpreter because the definitions are built once, at import.
TESTS_VIEW = """
import json, os
import tests.conftest as conftest
from fks_pipelines.definitions import defs
graph = defs.resolve_asset_graph()
starts = {graph.get(k).partitions_def.get_first_partition_key() for k in graph.get_all_asset_keys()
          if graph.get(k).partitions_def is not None}
print(json.dumps({"starts": sorted(starts), "home": os.environ["FKS_HOME"], "port": os.environ["FKS_PG_PORT"],
                  "session_home": str(conftest.SESSION_HOME)}))
"""


@pytest.mark.integration  # builds the whole definitions in a subprocess (seconds)
def test_a_demo_run_before_the_tests_does_not_move_their_partitions(tmp_path):
    """`make demo` then `make test`: the demo recorded its first day in the user's home (./.fks) and the user's
    shell exports FKS_* variables; the tests' definitions still start on the default day, in a home and on a
    port of their own."""
    user_home = tmp_path / ".fks"
    record_partitions_start(user_home, date(2026, 11, 4))  # the demo's recording step
    shell = {k: v for k, v in os.environ.items() if not k.startswith("FKS_")}
    shell.update(FKS_PARTITIONS_START="2026-11-05", FKS_PG_PORT="54329", PYTHONPATH=str(PROJECT_ROOT))
    for user_env in ({}, {"FKS_HOME": str(user_home)}):  # the default ./.fks, then an exported FKS_HOME
        seen = subprocess.run(
            [sys.executable, "-c", TESTS_VIEW],
            env={**shell, **user_env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert seen.returncode == 0, seen.stderr
        view = json.loads(seen.stdout.strip().splitlines()[-1])
        os.rmdir(view["session_home"])  # empty: no test ran in that interpreter
        assert view["starts"] == ["2020-01-01"]
        assert view["home"] == view["session_home"] and view["port"] != "54329"


def test_secrets_are_never_shown():
    settings = Settings.from_env({"FKS_DATABASE_URL": "postgresql://u:hunter2@db/fks", "FKS_LLM_API_KEY": "sk-hunter2"})
    assert "hunter2" not in repr(settings)
    assert settings.llm_api_key == "sk-hunter2"


def test_the_configuration_page_is_generated_from_the_model():
    page = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert page == configuration_markdown(), "regenerate: python -m fks_pipelines.settings > docs/configuration.md"
    for field in Settings.model_fields.values():
        assert f"`{field.validation_alias.choices[0]}`" in page


def test_settings_are_read_nowhere_else():
    """No module but settings.py reads a platform variable from the environment."""
    reads = re.compile(r"(os\.environ(\.get)?|os\.getenv)\s*[\[(]\s*[\"'](FKS_|DISCORD_)")
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{n}"
        for path in (PROJECT_ROOT / "fks_pipelines").rglob("*.py")
        if path.name != "settings.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if reads.search(line)
    ]
    assert offenders == []


def test_a_bad_setting_stops_the_cli_in_one_line_with_exit_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FKS_HOME": str(tmp_path / "home"), "FKS_PG_PORT": "not-a-port"}
    done = subprocess.run(
        [sys.executable, "-m", "fks_pipelines.cli", "db", "url"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "FKS_PG_PORT" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "home").exists()


def test_fks_symbols_can_list_a_hundred_sample_symbols():
    names = [f"S{i:03d}USDT" for i in range(98)] + ["DOGEUSDT", "BTCUSDT"]
    assert Settings.from_env({"FKS_SYMBOLS": ",".join(names)}).symbols == tuple(names)

"""`fks metrics`, `fks metrics serve` scraped by a real Prometheus, the alert rules under promtool, `fks status`,
and the Grafana dashboard naming only metrics the platform exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from click.testing import CliRunner

from fks_pipelines.cli import main
from fks_pipelines.lib.db.embedded import free_port
from fks_pipelines.lib.metrics import (
    AssetFreshness,
    PlatformSnapshot,
    RunSummary,
    overall,
    prometheus_text,
    status_rows,
)
from fks_pipelines.lib.notify import CheckOutcome
from tests.conftest import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "docker" / "monitoring"
ALERTS = MONITORING / "prometheus" / "alerts.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "fks.json"


def full_snapshot() -> PlatformSnapshot:
    """Every metric family with at least one sample."""
    from fks_pipelines.lib.metrics import SymbolRows

    return PlatformSnapshot(
        taken_at=datetime(2024, 5, 3, tzinfo=UTC),
        database_ok=True,
        symbols=[SymbolRows("BTCUSDT", 2880, 3, 3600.0)],
        ingest=[("sample", "loaded", 2, 2880), ("file", "refused", 1, 0)],
        freshness=[AssetFreshness("raw/binance_klines", 7200.0, "2024-05-02")],
        checks=[CheckOutcome("raw/binance_klines", "ohlc_sane", False, "ERROR")],
        recommendations=[("rules", "buy", 3)],
        llm_configured=True,
        llm_generations=4,
        llm_answers=3,
        llm_failures=1,
        llm_fallbacks=1,
        llm_latencies_s=[0.8, 2.5],
        embedding_backlog=5,
        runs=[RunSummary("daily_job", "FAILURE", 42.0, datetime(2024, 5, 3, tzinfo=UTC))],
    )


def exported_names(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")} | {
        re.split(r"[{ ]", line)[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def test_the_metrics_text_holds_each_required_family():
    text = prometheus_text(full_snapshot())
    assert 'fks_asset_freshness_lag_seconds{asset="raw/binance_klines"} 7200.0' in text
    assert 'fks_raw_rows{symbol="BTCUSDT"} 2880.0' in text and 'fks_raw_missing_bars{symbol="BTCUSDT"} 3.0' in text
    assert 'fks_ingest_rows_total{source="sample",status="loaded"} 2880.0' in text
    assert 'fks_ingest_loads_total{source="file",status="refused"} 1.0' in text
    assert 'fks_asset_check_results{outcome="failed",severity="ERROR"} 1.0' in text
    assert 'fks_recommendations_total{action="buy",generator="rules"} 3.0' in text
    assert "fks_llm_fallbacks_total 1.0" in text and "fks_llm_failures_total 1.0" in text
    assert 'fks_llm_latency_seconds_bucket{le="1.0"} 1.0' in text and "fks_llm_latency_seconds_count 2.0" in text
    assert "fks_embedding_backlog_documents 5.0" in text
    assert 'fks_dagster_last_run_success{job="daily_job"} 0.0' in text
    assert 'fks_dagster_last_run_duration_seconds{job="daily_job"} 42.0' in text


def test_status_rows_say_ok_warn_fail():
    rows = {r.item: r for r in status_rows(full_snapshot())}
    assert rows["database"].state == "ok" and rows["asset raw/binance_klines"].state == "ok"
    assert rows["last run"].state == "fail" and "daily_job FAILURE" in rows["last run"].detail
    assert rows["checks"].state == "fail" and "raw/binance_klines:ohlc_sane" in rows["checks"].detail
    assert rows["embeddings"].state == "warn" and rows["embeddings"].values == {"backlog": 5}
    # The same facts as numbers (what `fks status --json` adds to each item), not only inside the sentence.
    assert rows["asset raw/binance_klines"].values == {"lag_s": 7200.0, "latest_partition": "2024-05-02"}
    assert rows["last run"].values["duration_s"] == 42.0 and rows["checks"].values == {"failing": 1, "evaluated": 1}


def test_no_llm_is_a_state_not_a_warning():
    """Without an LLM the rules engine answers: a healthy platform so configured is `ok` overall."""
    healthy = replace(
        full_snapshot(),
        llm_configured=False,
        checks=[CheckOutcome("raw/binance_klines", "ohlc_sane", True, "ERROR")],
        runs=[RunSummary("all_assets_job", "SUCCESS", 42.0, datetime(2024, 5, 3, tzinfo=UTC))],
        embedding_backlog=0,
    )
    rows = {r.item: r for r in status_rows(healthy)}
    assert rows["llm"].state == "ok" and "rules engine" in rows["llm"].detail
    assert rows["llm"].values["configured"] is False and rows["llm"].values["generator"] == "rules"
    assert overall(list(rows.values())) == "ok"


def test_the_dashboard_names_only_metrics_the_platform_exports():
    exported = exported_names(prometheus_text(full_snapshot()))
    queries = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    named = {n for q in queries for n in re.findall(r"\b(fks_[a-z_]+)", q)}
    assert named and named <= exported, named - exported
    assert {"fks_asset_freshness_lag_seconds", "fks_raw_rows", "fks_asset_check_results"} <= named
    assert any("fks_recommendations_total" in q for q in queries) and any("fks_llm_" in q for q in queries)


def test_cli_metrics_and_status_read_the_database(db_url, tmp_path):
    env = {"FKS_DATABASE_URL": db_url, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    runner = CliRunner()
    loaded = runner.invoke(main, ["ingest", "sample", "--days", "2", "--symbols", "BTCUSDT,DOGEUSDT"], env=env)
    assert loaded.exit_code == 0, loaded.output
    result = runner.invoke(main, ["metrics"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 'fks_raw_rows{symbol="DOGEUSDT"} 2880.0' in result.output
    assert 'fks_raw_missing_bars{symbol="BTCUSDT"} 0.0' in result.output
    assert 'fks_ingest_rows_total{source="sample",status="loaded"} 5760.0' in result.output
    assert "fks_database_up 1.0" in result.output
    status = runner.invoke(main, ["status", "--json"], env=env, catch_exceptions=False)
    assert status.exit_code == 0, status.output
    data = json.loads(status.output.strip().splitlines()[-1])
    items = {i["item"]: i for i in data["items"]}
    assert items["database"]["state"] == "ok" and items["last run"]["state"] == "warn"
    assert items["llm"]["state"] == "ok" and items["llm"]["configured"] is False and items["checks"]["evaluated"] == 0
    assert data["overall"] in {"warn", "fail"}
    screen = runner.invoke(main, ["status"], env=env, catch_exceptions=False)
    assert "database" in screen.output and "last run" in screen.output and "llm" in screen.output


def test_metrics_serve_refuses_a_busy_port_in_one_line(db_url, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "FKS_DATABASE_URL": db_url, "DAGSTER_HOME": str(tmp_path / "dh")}
        done = subprocess.run(
            [sys.executable, "-m", "fks_pipelines.cli", "metrics", "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in done.stderr


def test_a_real_prometheus_scrapes_fks_metrics_serve_and_the_alert_rules_pass_promtool(db_url, tmp_path):
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        pytest.skip("the prometheus and promtool binaries are missing (`make system-deps` installs them as root)")
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0 and "SUCCESS: 6 rules found" in checked.stdout, checked.stdout + checked.stderr

    env = {**os.environ, "FKS_DATABASE_URL": db_url, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    loaded = CliRunner().invoke(main, ["ingest", "sample", "--days", "1", "--symbols", "ETHUSDT"], env=env)
    assert loaded.exit_code == 0, loaded.output
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{ALERTS}]\n"
        f"scrape_configs:\n  - job_name: fks\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    assert subprocess.run([promtool, "check", "config", str(config)], capture_output=True).returncode == 0
    serve = subprocess.Popen(
        [sys.executable, "-m", "fks_pipelines.cli", "metrics", "serve", "--port", str(metrics_port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    prom = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        value = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and value is None:
            time.sleep(1)
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": 'fks_raw_rows{symbol="ETHUSDT"}'}
                ).json()
            except httpx.HTTPError:
                continue
            if answer.get("data", {}).get("result"):
                value = answer["data"]["result"][0]["value"][1]
        assert value == "1440", f"Prometheus never scraped fks_raw_rows (serve: {serve.poll()})"
        rules = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/rules").json()["data"]["groups"][0]["rules"]
        assert {r["name"] for r in rules} >= {
            "FksStaleData",
            "FksChecksFailing",
            "FksLlmFallbackRate",
            "FksRunsFailing",
        }
    finally:
        for proc in (prom, serve):
            proc.terminate()
            proc.wait(timeout=30)

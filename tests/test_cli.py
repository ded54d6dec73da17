"""The `fks` command: database lifecycle, ingestion through the shared load path, and the demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import psycopg
from click.testing import CliRunner

from fks_pipelines.cli import main
from fks_pipelines.lib.db.embedded import free_port
from tests.support import Reply, Request, ScriptedServer

FKS = [sys.executable, "-m", "fks_pipelines.cli"]


def invoke(args: list[str], env: dict[str, str]):
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result


def test_ingest_archive_loads_real_files_and_rejects_a_bad_one(db_url, shared_data, tmp_path):
    bad_dir = tmp_path / "futures-um"
    bad_dir.mkdir()
    lines = (shared_data / "futures-um" / "ETHUSDT-1m-2022-08-25.csv").read_text().splitlines()
    (bad_dir / "ETHUSDT-1m-2022-08-25.csv").write_text("\n".join(lines[:300] + [lines[300][:20]] + lines[301:]))
    result = invoke(
        ["ingest", "archive", str(shared_data / "spot"), str(shared_data / "futures-um" / "ETHUSDT-1m-2022-08-24.csv"), str(bad_dir)],
        {"FKS_DATABASE_URL": db_url},
    )
    assert result.exit_code == 1
    assert "REJECTED" in result.output and "row 300" in result.output
    assert "1 of 10 file(s) rejected" in result.output
    with psycopg.connect(db_url) as conn:
        rows = dict(conn.execute("SELECT market || ':' || symbol || ':' || interval, count(*) FROM raw.binance_klines GROUP BY 1").fetchall())
        statuses = dict(conn.execute("SELECT status, count(*) FROM raw.ingest_log GROUP BY 1").fetchall())
    assert rows == {"spot:BTCUSDT:1m": 3 * 1440, "spot:ETHUSDT:1m": 2 * 1440, "spot:BTCUSDT:1h": 3 * 24, "usdm:ETHUSDT:1m": 1440}
    assert statuses == {"loaded": 9}  # the bad file never reached the database


def test_ingest_sample_prints_a_summary(db_url):
    result = invoke(["ingest", "sample", "--days", "2", "--symbols", "BTCUSDT,SOLUSDT"], {"FKS_DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line.startswith(("BTCUSDT", "SOLUSDT"))}
    assert lines["BTCUSDT"][1] == "2880" and lines["SOLUSDT"][-1] == "0"


def test_ingest_binance_pages_through_the_rest_api(db_url):
    def handler(request: Request) -> Reply:
        start, end = int(request.query["startTime"]), int(request.query["endTime"])
        limit = int(request.query["limit"])
        rows = [[t, "100.0", "101.0", "99.0", "100.5", "2.0", t + 59_999, "200.0", 5, "1.0", "100.0", "0"]
                for t in range(start, end + 1, 60_000)][:limit]  # fmt: skip
        return Reply(200, json.dumps(rows).encode(), {"X-MBX-USED-WEIGHT-1M": "2"})

    with ScriptedServer(handler) as server:
        result = invoke(
            ["ingest", "binance", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-02"],
            {"FKS_DATABASE_URL": db_url, "FKS_BINANCE_REST_URL": server.url},
        )
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 4  # two days, two pages each (1000 + 440)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT open_time) FROM raw.binance_klines").fetchone() == (2880, 2880)


def test_embedded_database_lifecycle_through_the_cli(server_home):
    env = dict(os.environ, FKS_HOME=str(server_home), FKS_PG_PORT=str(free_port()))
    env.pop("FKS_DATABASE_URL", None)
    try:
        start = subprocess.run([*FKS, "db", "start"], env=env, capture_output=True, text=True, timeout=120)
        assert start.returncode == 0, start.stderr
        assert "running" in start.stdout and "migrations applied: 001_raw" in start.stdout
        again = subprocess.run([*FKS, "db", "start"], env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "migrations applied" not in again.stdout
        status = subprocess.run([*FKS, "db", "status"], env=env, capture_output=True, text=True, timeout=60)
        assert f"127.0.0.1:{env['FKS_PG_PORT']}" in status.stdout and "vector" in status.stdout
        url = subprocess.run([*FKS, "db", "url"], env=env, capture_output=True, text=True, timeout=60).stdout.strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database(), to_regclass('raw.binance_klines')::text").fetchone() == ("fks", "raw.binance_klines")
        psql = subprocess.run([*FKS, "db", "psql", "-At", "-c", "select 40 + 2"], env=env, capture_output=True, text=True, timeout=60)
        assert psql.stdout.strip() == "42", psql.stderr
    finally:
        stop = subprocess.run([*FKS, "db", "stop"], env=env, capture_output=True, text=True, timeout=120)
    assert "stopped" in stop.stdout
    status = subprocess.run([*FKS, "db", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert "stopped" in status.stdout


def test_demo_runs_the_main_job_through_dagster(server_home, tmp_path):
    """`make demo`'s command, end to end, on a fresh FKS_HOME (2 days to keep it short)."""
    env = dict(os.environ, FKS_HOME=str(server_home), FKS_PG_PORT=str(free_port()))
    for key in ("FKS_DATABASE_URL", "FKS_DAGSTER_DATABASE_URL", "DAGSTER_HOME"):
        env.pop(key, None)
    try:
        demo = subprocess.run([*FKS, "demo", "--days", "2"], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        out = demo.stdout
        assert "SUCCESS" in out
        passed, total = re.search(r"checks: (\d+) of (\d+) passed", out).groups()
        assert passed == total and int(total) > 20
        raw_part, marts_part = out.split("raw.binance_klines", 1)[1].split("marts.fct_ohlcv_1d", 1)
        table = {line.split()[0]: line.split() for line in raw_part.splitlines() if line.startswith(("BTCUSDT", "ETHUSDT", "SOLUSDT"))}
        assert set(table) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
        assert all(row[1] == "2880" and row[-1] == "0" for row in table.values())
        daily = [line.split() for line in marts_part.split("marts.fct_returns")[0].splitlines() if line.startswith(("BTC", "ETH", "SOL"))]
        assert len(daily) == 3 and all(row[-1] == "1440" for row in daily)
        # Two days of bars are too few for a walk-forward window: the section is there, and empty.
        assert "analytics.strategy_choices" in out
        # The knowledge layer: 2 days x 3 symbols of market summaries, all embedded, and a point-in-time search.
        knowledge = out.split("knowledge.documents", 1)[1]
        assert re.search(r"market_summary\s+6\s+6", knowledge), knowledge
        assert len(re.findall(r"^  0\.\d{3}  market_summary", knowledge.split("knowledge.search:", 1)[1], flags=re.M)) == 3
        found = subprocess.run([*FKS, "search", "a calm day for ETHUSDT", "-k", "2", "--symbols", "ETHUSDT"],
                               env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert found.stdout.startswith("2 documents known by") and found.stdout.count("market_summary ETHUSDT") == 2
        before = subprocess.run([*FKS, "search", "anything", "--as-of", "2020-01-01"], env=env, capture_output=True, text=True)
        assert before.stdout.startswith("0 documents known by 2020-01-01")
        # It ends with the day's recommendation for the example account: a table, then the same as JSON.
        assert "imported the example account" in out
        recommendation = out.split("recommendations.daily:", 1)[1]
        assert "demo-personal: generator rules" in recommendation
        rows = json.loads(recommendation[recommendation.index("{"):])
        assert {r["symbol"] for r in rows["recommendations"]} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
        assert all(r["generator"] == "rules" and r["account"] == "demo-personal" for r in rows["recommendations"])
        # fks portfolio import: a bad file changes nothing; a good one replaces the account.
        bad = tmp_path / "bad.yaml"
        bad.write_text("accounts:\n  - {name: demo-personal, cash: -1}\n")
        rejected = subprocess.run([*FKS, "portfolio", "import", str(bad)], env=env, capture_output=True, text=True, timeout=120)
        assert rejected.returncode == 1 and "negative cash -1 (nothing was written)" in rejected.stderr
        good = tmp_path / "good.yaml"
        good.write_text("accounts:\n  - {name: demo-personal, kind: personal, cash: 2500}\n")
        imported = subprocess.run([*FKS, "portfolio", "import", str(good)], env=env, capture_output=True, text=True, timeout=120)
        assert imported.returncode == 0 and "demo-personal        personal   cash 2,500.00 USDT" in imported.stdout
        # The run is recorded in Dagster's PostgreSQL storage, not in a local SQLite file.
        url = subprocess.run([*FKS, "db", "url", "--database", "dagster"], env=env, capture_output=True, text=True).stdout.strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'").fetchone()[0] == 1
        assert not list((server_home / "dagster_home").glob("**/*.db"))
    finally:
        subprocess.run([*FKS, "db", "stop"], env=env, capture_output=True, timeout=120)


def test_dev_serves_the_ui_and_stops_all_its_children(server_home):
    """`fks dev` starts `dagster dev`; its GraphQL API shows the asset graph, schedules and sensors and
    materializes an asset; SIGTERM to fks stops the webserver, daemon and code server too."""
    import signal
    import time

    import httpx
    import psutil

    port = free_port()
    env = dict(os.environ, FKS_HOME=str(server_home), FKS_PG_PORT=str(free_port()))
    for key in ("FKS_DATABASE_URL", "FKS_DAGSTER_DATABASE_URL", "DAGSTER_HOME"):
        env.pop(key, None)
    proc = subprocess.Popen([*FKS, "dev", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "fks dev exited early"
            time.sleep(1)
        else:
            raise AssertionError("the Dagster UI did not come up within 240 s")
        # The UI's GraphQL API: the asset graph, the schedules and sensors, and one materialization through it.
        graphql = f"http://127.0.0.1:{port}/graphql"

        def ask(query: str, variables: dict | None = None) -> dict:
            reply = httpx.post(graphql, json={"query": query, "variables": variables or {}}, timeout=60).json()
            assert "errors" not in reply, reply
            return reply["data"]

        graph = ask("{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
        keys = {"/".join(n["assetKey"]["path"]) for n in graph}
        assert {"raw/binance_klines", "marts/fct_ohlcv_1d", "knowledge/document_embeddings", "recommendations/daily"} <= keys
        (repo,) = ask("{ repositoriesOrError { ... on RepositoryConnection { nodes { name schedules { name } sensors { name } } } } }")[
            "repositoriesOrError"]["nodes"]  # fmt: skip
        assert {s["name"] for s in repo["schedules"]} == {"daily_schedule", "weekly_reoptimisation"}
        assert {"gap_sensor", "new_symbol_sensor", "archive_landing_sensor", "run_failure_to_discord"} <= {s["name"] for s in repo["sensors"]}
        launched = ask(
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename"
            " ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }",
            {"p": {"selector": {"repositoryLocationName": "fks_pipelines", "repositoryName": repo["name"], "jobName": "__ASSET_JOB",
                                "assetSelection": [{"path": ["raw", "binance_klines"]}]},
                   "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "2024-05-01"}]}}},
        )["launchRun"]  # fmt: skip
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id, status = launched["run"]["runId"], None
        deadline = time.monotonic() + 300  # queued, dequeued by the daemon, launched, run
        while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
            time.sleep(2)
            status = ask("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})["runOrError"]["status"]
        assert status == "SUCCESS", status
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("dagster" in " ".join(c.cmdline()) for c in children)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [c.cmdline() for c in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in children:
            if child.is_running():
                child.kill()
        subprocess.run([*FKS, "db", "stop"], env=env, capture_output=True, timeout=120)

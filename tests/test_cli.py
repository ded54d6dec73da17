"""The `fks` command: database lifecycle, ingestion through the shared load path, and the demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from fks_pipelines.cli import main
from fks_pipelines.lib.db.embedded import EmbeddedPostgres, free_port
from fks_pipelines.settings import record_partitions_start
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
        [
            "ingest",
            "archive",
            str(shared_data / "spot"),
            str(shared_data / "futures-um" / "ETHUSDT-1m-2022-08-24.csv"),
            str(bad_dir),
        ],
        {"FKS_DATABASE_URL": db_url},
    )
    assert result.exit_code == 1
    assert "REJECTED" in result.output and "row 300" in result.output
    assert "1 of 10 file(s) rejected" in result.output
    with psycopg.connect(db_url) as conn:
        rows = dict(
            conn.execute(
                "SELECT market || ':' || symbol || ':' || interval, count(*) FROM raw.binance_klines GROUP BY 1"
            ).fetchall()
        )
        statuses = dict(conn.execute("SELECT status, count(*) FROM raw.ingest_log GROUP BY 1").fetchall())
    assert rows == {
        "spot:BTCUSDT:1m": 3 * 1440,
        "spot:ETHUSDT:1m": 2 * 1440,
        "spot:BTCUSDT:1h": 3 * 24,
        "usdm:ETHUSDT:1m": 1440,
    }
    assert statuses == {"loaded": 9}  # the bad file never reached the database


def test_ingest_sample_prints_a_summary(db_url):
    result = invoke(["ingest", "sample", "--days", "2", "--symbols", "BTCUSDT,SOLUSDT"], {"FKS_DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    lines = {
        line.split()[0]: line.split() for line in result.output.splitlines() if line.startswith(("BTCUSDT", "SOLUSDT"))
    }
    assert lines["BTCUSDT"][1] == "2880" and lines["SOLUSDT"][-1] == "0"


def test_ingest_binance_pages_through_the_rest_api(db_url):
    def handler(request: Request) -> Reply:
        start, end = int(request.query["startTime"]), int(request.query["endTime"])
        limit = int(request.query["limit"])
        rows = [
            [t, "100.0", "101.0", "99.0", "100.5", "2.0", t + 59_999, "200.0", 5, "1.0", "100.0", "0"]
            for t in range(start, end + 1, 60_000)
        ][:limit]
        return Reply(200, json.dumps(rows).encode(), {"X-MBX-USED-WEIGHT-1M": "2"})

    with ScriptedServer(handler) as server:
        result = invoke(
            ["ingest", "binance", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-02"],
            {"FKS_DATABASE_URL": db_url, "FKS_BINANCE_REST_URL": server.url},
        )
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 4  # two days, two pages each (1000 + 440)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT open_time) FROM raw.binance_klines").fetchone() == (
            2880,
            2880,
        )


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
            assert conn.execute("SELECT current_database(), to_regclass('raw.binance_klines')::text").fetchone() == (
                "fks",
                "raw.binance_klines",
            )
        psql = subprocess.run(
            [*FKS, "db", "psql", "-At", "-c", "select 40 + 2"], env=env, capture_output=True, text=True, timeout=60
        )
        assert psql.stdout.strip() == "42", psql.stderr
    finally:
        stop = subprocess.run([*FKS, "db", "stop"], env=env, capture_output=True, text=True, timeout=120)
    assert "stopped" in stop.stdout
    status = subprocess.run([*FKS, "db", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert "stopped" in status.stdout


def test_db_url_is_only_printed_for_this_homes_own_server(server_home, pg_server):
    """A second checkout (FKS_HOME=B) on the port of a running server of another home (A) gets no URL of A."""
    env = dict(os.environ, FKS_HOME=str(server_home), FKS_PG_PORT=str(pg_server.port))
    env.pop("FKS_DATABASE_URL", None)

    def db_url(port: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*FKS, "db", "url"], env=dict(env, FKS_PG_PORT=str(port)), capture_output=True, text=True, timeout=60
        )

    stopped = db_url(pg_server.port)
    assert stopped.returncode != 0 and stopped.stdout == ""
    assert stopped.stderr.strip().splitlines() == [
        f"Error: the embedded server of {server_home} is not running; start it with: fks db start"
    ]
    home_b = EmbeddedPostgres(server_home, port=free_port())
    home_b.start()
    try:
        elsewhere = db_url(pg_server.port)
        assert elsewhere.returncode != 0 and elsewhere.stdout == ""
        assert (
            f"runs on port {home_b.port}, not {pg_server.port}" in elsewhere.stderr
            and len(elsewhere.stderr.splitlines()) == 1
        )
        own = db_url(home_b.port)
        assert own.returncode == 0, own.stderr
        with psycopg.connect(own.stdout.strip()) as conn:
            assert conn.execute("SHOW data_directory").fetchone() == (str(home_b.data_dir),)
    finally:
        home_b.stop()


# The first partition of every partitioned asset, as the code location's definitions build it.
FIRST_PARTITIONS = """
import json, os
from fks_pipelines.lib.db.platform import platform_env
from fks_pipelines.settings import Settings
os.environ.update(platform_env(Settings.from_env(), start=False))  # what `fks dev` gives its code server
from fks_pipelines.definitions import defs
graph = defs.resolve_asset_graph()
nodes = [graph.get(key) for key in graph.get_all_asset_keys()]
print(json.dumps({
    n.key.to_user_string(): n.partitions_def.get_first_partition_key() for n in nodes if n.partitions_def is not None
}))
"""


def test_demo_runs_the_all_assets_job_through_dagster(server_home, tmp_path):
    """`make demo`'s command, end to end, on a fresh FKS_HOME (2 days to keep it short)."""
    env = dict(os.environ, FKS_HOME=str(server_home), FKS_PG_PORT=str(free_port()))
    for key in ("FKS_DATABASE_URL", "FKS_DAGSTER_DATABASE_URL", "DAGSTER_HOME"):
        env.pop(key, None)
    try:
        demo = subprocess.run(
            [*FKS, "demo", "--sample", "--days", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        out = demo.stdout
        assert "SUCCESS" in out
        # Partitions that fit the data: the demo records its first day as this home's partition start, and the
        # definitions the code location loads with this home (what `fks dev` serves next) have no day before it.
        first = datetime.now(UTC).date() - timedelta(days=2)
        assert f"partitions: daily from {first}" in out
        recorded = (server_home / "settings.env").read_text().splitlines()
        assert recorded[1:] == [
            f"FKS_PARTITIONS_START={first}",
            "FKS_SOURCE=sample",
            "FKS_INTERVAL=1m",
            "FKS_SYMBOLS=BTCUSDT,ETHUSDT,SOLUSDT",
        ]
        seen = subprocess.run(
            [sys.executable, "-c", FIRST_PARTITIONS], env=env, capture_output=True, text=True, timeout=300
        )
        assert seen.returncode == 0, seen.stderr
        firsts = json.loads(seen.stdout.strip().splitlines()[-1])
        assert len(firsts) >= 7 and set(firsts.values()) == {first.isoformat()}, firsts
        passed, total = re.search(r"checks: (\d+) of (\d+) passed", out).groups()
        assert passed == total and int(total) > 20
        raw_part, marts_part = out.split("raw.binance_klines", 1)[1].split("marts.fct_ohlcv_1d", 1)
        table = {
            line.split()[0]: line.split()
            for line in raw_part.splitlines()
            if line.startswith(("BTCUSDT", "ETHUSDT", "SOLUSDT"))
        }
        assert set(table) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
        assert all(row[1] == "2880" and row[-1] == "0" for row in table.values())
        daily = [
            line.split()
            for line in marts_part.split("marts.fct_returns")[0].splitlines()
            if line.startswith(("BTC", "ETH", "SOL"))
        ]
        assert len(daily) == 3 and all(row[-1] == "1440" for row in daily)
        # Two days of bars are too few for a walk-forward window: the section is there, and empty.
        assert "analytics.strategy_choices" in out
        # The knowledge layer: 2 days x 3 symbols of market summaries, all embedded, and a point-in-time search.
        knowledge = out.split("knowledge.documents", 1)[1]
        assert re.search(r"market_summary\s+6\s+6", knowledge), knowledge
        assert (
            len(re.findall(r"^  0\.\d{3}  market_summary", knowledge.split("knowledge.search:", 1)[1], flags=re.M)) == 3
        )
        found = subprocess.run(
            [*FKS, "search", "a calm day for ETHUSDT", "-k", "2", "--symbols", "ETHUSDT"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert found.returncode == 0, found.stderr
        assert found.stdout.startswith("2 documents known by") and found.stdout.count("market_summary ETHUSDT") == 2
        before = subprocess.run(
            [*FKS, "search", "anything", "--as-of", "2020-01-01"], env=env, capture_output=True, text=True
        )
        assert before.stdout.startswith("0 documents known by 2020-01-01")
        # It ends with the day's recommendation for the example account: a table, then the same as JSON.
        assert "imported the example account" in out
        # The evidence the decision read starts with the decision day's own summary (as of that day's close).
        evidence = out.split("evidence read for the decisions of", 1)[1].split("recommendations.daily:", 1)[0]
        today = datetime.now(UTC).date()
        assert len(re.findall(rf"^  demo-personal\s+{today:%Y-%m-%d} 00:00  market_summary", evidence, re.M)) == 3
        recommendation = out.split("recommendations.daily:", 1)[1]
        assert "demo-personal: generator rules" in recommendation
        rows = json.loads(recommendation[recommendation.index("{") :])
        assert {r["symbol"] for r in rows["recommendations"]} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
        assert all(r["generator"] == "rules" and r["account"] == "demo-personal" for r in rows["recommendations"])
        # fks explain: the last decision in text and valid PNG pictures; an unknown account is one line, exit 2.
        explained = subprocess.run(
            [*FKS, "explain", "demo-personal", "--json", "--out", str(tmp_path / "why")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert explained.returncode == 0, explained.stderr
        why = json.loads(explained.stdout.strip().splitlines()[-1])
        assert why["date"] == str(today - timedelta(days=1))
        assert "Guards:" in why["text"] and "final target" in why["text"]
        assert {"account.png", "size.png"} <= {Path(p).name for p in why["pictures"]}
        for picture in why["pictures"]:
            png = Path(picture).read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and 2_000 < len(png) < 200_000, picture
        nobody = subprocess.run([*FKS, "explain", "nobody"], env=env, capture_output=True, text=True, timeout=300)
        assert nobody.returncode == 2 and nobody.stderr.strip().startswith("Error: no account 'nobody'")
        assert "Traceback" not in nobody.stderr
        # fks portfolio import: a bad file changes nothing; a good one replaces the account.
        bad = tmp_path / "bad.yaml"
        bad.write_text("accounts:\n  - {name: demo-personal, cash: -1}\n")
        rejected = subprocess.run(
            [*FKS, "portfolio", "import", str(bad)], env=env, capture_output=True, text=True, timeout=120
        )
        assert rejected.returncode == 2 and "negative cash -1 (nothing was written)" in rejected.stderr
        good = tmp_path / "good.yaml"
        good.write_text("accounts:\n  - {name: demo-personal, kind: personal, cash: 2500}\n")
        imported = subprocess.run(
            [*FKS, "portfolio", "import", str(good)], env=env, capture_output=True, text=True, timeout=120
        )
        assert imported.returncode == 0 and "demo-personal        personal   cash 2,500.00 USDT" in imported.stdout
        # The run is recorded in Dagster's PostgreSQL storage, not in a local SQLite file.
        url = subprocess.run(
            [*FKS, "db", "url", "--database", "dagster"], env=env, capture_output=True, text=True
        ).stdout.strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'").fetchone()[0] == 1
            # ...launched from the workspace's code location (on the job's page; re-executes from the UI).
            ((pipeline_name, body),) = conn.execute("SELECT pipeline_name, run_body FROM runs").fetchall()
            # The asset page shows the last decision's pictures: in the last partition's materialization metadata.
            pictures = conn.execute(
                "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
                " AND event LIKE '%why_demo-personal%' AND event LIKE '%data:image/png;base64,%'"
            ).fetchone()[0]
            assert pictures == 1
        origin = json.loads(body)["external_pipeline_origin"]  # the remote job origin, by its serialized name
        assert pipeline_name == "all_assets_job"
        assert '"fks/gpu"' not in body  # a CPU-only run (no FKS_GPUS) is not tagged for a GPU
        assert origin is not None and '"location_name": "fks_pipelines"' in json.dumps(origin)
        assert "open http://127.0.0.1:3000/runs/" in out
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
    for key in ("FKS_DATABASE_URL", "FKS_DAGSTER_DATABASE_URL", "DAGSTER_HOME", "FKS_PARTITIONS_START"):
        env.pop(key, None)
    log = server_home / "fks-dev.log"
    # As after a demo that loaded from 2024-05-01: the home records its partition start, and the UI shows it.
    record_partitions_start(server_home, date(2024, 5, 1))
    # Started from the project root, beside the project's dagster.yaml, as a user would.
    with log.open("w") as out:
        proc = subprocess.Popen([*FKS, "dev", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
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

        graph = ask("{ assetNodes { assetKey { path } groupName owners { ... on TeamAssetOwner { team } } } }")[
            "assetNodes"
        ]
        keys = {"/".join(n["assetKey"]["path"]) for n in graph}
        # Groups are key prefixes (one word per layer) and every asset has an owner.
        assert all(n["groupName"] == n["assetKey"]["path"][0] for n in graph), graph
        assert all(n["owners"] for n in graph), graph
        assert {
            "raw/binance_klines",
            "marts/fct_ohlcv_1d",
            "knowledge/document_embeddings",
            "recommendations/daily",
        } <= keys
        # Partitions that fit the data: every partitioned asset's first partition is the home's recorded start.
        partitioned = ask("{ assetNodes { assetKey { path } isPartitioned partitionKeys } }")["assetNodes"]
        firsts = {"/".join(n["assetKey"]["path"]): n["partitionKeys"][0] for n in partitioned if n["isPartitioned"]}
        assert len(firsts) >= 7 and set(firsts.values()) == {"2024-05-01"}, firsts
        (repo,) = ask(
            "{ repositoriesOrError { ... on RepositoryConnection"
            " { nodes { name schedules { name } sensors { name } } } } }"
        )["repositoriesOrError"]["nodes"]
        assert {s["name"] for s in repo["schedules"]} == {"daily_schedule", "weekly_reoptimize_schedule"}
        assert {"gap_sensor", "new_symbol_sensor", "archive_landing_sensor", "run_failure_to_discord"} <= {
            s["name"] for s in repo["sensors"]
        }
        launched = ask(
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename"
            " ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }",
            {
                "p": {
                    "selector": {
                        "repositoryLocationName": "fks_pipelines",
                        "repositoryName": repo["name"],
                        "jobName": "__ASSET_JOB",
                        "assetSelection": [{"path": ["raw", "binance_klines"]}],
                    },
                    "executionMetadata": {
                        "tags": [
                            {"key": "dagster/asset_partition_range_start", "value": "2024-05-01"},
                            {"key": "dagster/asset_partition_range_end", "value": "2024-05-02"},
                        ]
                    },
                }
            },
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id, status = launched["run"]["runId"], None
        deadline = time.monotonic() + 300  # queued, dequeued by the daemon, launched, run
        while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
            time.sleep(2)
            status = ask("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})[
                "runOrError"
            ]["status"]
        assert status == "SUCCESS", status
        # After the range run every planned check has a result (none left "Skipped"), and the raw table reports
        # its rows per partition, its name and its columns.
        url = subprocess.run(
            [*FKS, "db", "url", "--database", "dagster"], env=env, capture_output=True, text=True
        ).stdout.strip()
        with psycopg.connect(url) as conn:
            statuses = dict(
                conn.execute(
                    "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s", (run_id,)
                ).fetchall()
            )
        # The UI's materialize also evaluates the asset's freshness check: 2024's days are stale today (a
        # result, not a skip); the data-quality checks pass.
        assert statuses.pop("freshness_check", "FAILED") == "FAILED"
        assert statuses == dict.fromkeys(
            [
                "unique_natural_key",
                "complete_days",
                "ohlc_consistent",
                "volumes_non_negative",
                "close_time_consistent",
                "price_jumps",
            ],
            "SUCCEEDED",
        ), statuses
        events = ask(
            'query { assetOrError(assetKey: {path: ["raw", "binance_klines"]}) { ... on Asset {'
            " assetMaterializations(limit: 2) { partition metadataEntries { label __typename } } } } }"
        )["assetOrError"]["assetMaterializations"]
        assert sorted(e["partition"] for e in events) == ["2024-05-01", "2024-05-02"]
        for event in events:
            labels = {m["label"]: m["__typename"] for m in event["metadataEntries"]}
            assert labels["dagster/row_count"] == "IntMetadataEntry"
            assert labels["dagster/column_schema"] == "TableSchemaMetadataEntry"
            assert labels["dagster/table_name"] == "TextMetadataEntry"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("dagster" in " ".join(c.cmdline()) for c in children)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [c.cmdline() for c in alive]
        # No start-up warnings: neither "use dg dev" (superseded `dagster dev`) nor "Found dagster.yaml in the
        # current folder, but DAGSTER_HOME ... will not be used" (a second instance config).
        output = log.read_text()
        assert "Serving dagster-webserver on http://127.0.0.1" in output, output
        warnings = [line for line in output.splitlines() if "WARNING" in line.upper() or "dagster.yaml" in line]
        assert not warnings, warnings
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in children:
            if child.is_running():
                child.kill()
        subprocess.run([*FKS, "db", "stop"], env=env, capture_output=True, timeout=120)


# A user error is one line on stderr naming the bad value and its option, exit code 2, and nothing started,
# fetched or written: each value is checked before the database, the embedder or a source is touched.
BAD_INVOCATIONS = {
    "absurd interval": (
        ["ingest", "binance", "--interval", "99999999999999999999m", "--start", "2024-01-01", "--end", "2024-01-01"],
        "--interval",
        "99999999999999999999m",
    ),
    "zero interval": (["ingest", "archive", "{shared}/spot", "--interval", "0m"], "--interval", "0m"),
    "as-of not a time": (["search", "q", "--as-of", "yesterday"], "--as-of", "yesterday"),
    "k negative": (["search", "q", "-k", "-1"], "-k", "-1"),
    "k huge": (["search", "q", "-k", "100000000"], "-k", "100000000"),
    "unknown kind": (["search", "q", "--kinds", "market_summary,trades"], "--kinds", "trades"),
    "reversed range": (["ingest", "binance", "--start", "2024-02-01", "--end", "2024-01-01"], "--end", "2024-01-01"),
    "future range": (["ingest", "binance", "--start", "9999-12-31", "--end", "9999-12-31"], "--end", "9999-12-31"),
    "not a date": (["ingest", "binance", "--start", "2024-02-30", "--end", "2024-03-01"], "--start", "2024-02-30"),
    "sample zero days": (["ingest", "sample", "--days", "0"], "--days", "0"),
    "sample negative days": (["ingest", "sample", "--days", "-3"], "--days", "-3"),
    "demo zero days": (["demo", "--days", "0"], "--days", "0"),
    "demo negative days": (["demo", "--days", "-3"], "--days", "-3"),
    "demo before the partitions": (["demo", "--days", "3000"], "--days", "3000"),
    "gap rate 2": (["ingest", "sample", "--days", "1", "--gap-rate", "2"], "--gap-rate", "2"),
    "gap rate nan": (["ingest", "sample", "--days", "1", "--gap-rate", "nan"], "--gap-rate", "nan"),
    "unknown database": (["db", "url", "--database", "fsk"], "--database", "fsk"),
    "backfill reversed": (["backfill", "--start", "2024-02-01", "--end", "2024-01-01"], "--end", "2024-01-01"),
    "backfill not a date": (["backfill", "--start", "2024-02-30", "--end", "2024-03-01"], "--start", "2024-02-30"),
    "backfill before the partitions": (["backfill", "--start", "1999-01-01", "--end", "1999-01-02"], "--start", "1999"),
}


# One `fks` process each (about a second of CPU): `make test-quick` runs a few, `make test` every one.
QUICK_BAD_INVOCATIONS = {"zero interval", "reversed range", "backfill before the partitions"}


@pytest.mark.parametrize(
    "args, option, value",
    [
        pytest.param(*v, id=k, marks=() if k in QUICK_BAD_INVOCATIONS else pytest.mark.slow)
        for k, v in BAD_INVOCATIONS.items()
    ],
)
def test_a_bad_value_is_one_line_exit_2_and_nothing_happens(args, option, value, shared_data, tmp_path):
    home = tmp_path / "fks_home"
    with ScriptedServer(lambda request: Reply(200, b"[]")) as binance:
        env = dict(os.environ, FKS_HOME=str(home), FKS_PG_PORT=str(free_port()), FKS_BINANCE_REST_URL=binance.url)
        args = [a.replace("{shared}", str(shared_data)) for a in args]
        try:
            done = subprocess.run([*FKS, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        finally:
            if (home / "pgdata").exists():  # started by mistake: stop it, then fail below
                subprocess.run([*FKS, "db", "stop"], env=env, capture_output=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"'{option}'" in lines[0] and value in lines[0], lines[0]
    assert done.stdout == ""
    assert not home.exists()  # no embedded server started, no secrets or Dagster home written
    assert binance.requests == []


def test_bad_values_write_nothing_to_the_database(db_url):
    with ScriptedServer(lambda request: Reply(200, b"[]")) as binance:
        env = dict(os.environ, FKS_DATABASE_URL=db_url, FKS_BINANCE_REST_URL=binance.url)
        for args in (
            ["ingest", "sample", "--days", "1", "--symbols", "BTCUSDT", "--gap-rate", "2"],
            [
                "ingest",
                "binance",
                "--symbols",
                "BTCUSDT",
                "--interval",
                "0m",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-01",
            ],
            ["ingest", "binance", "--symbols", "BTCUSDT", "--start", "2024-01-02", "--end", "2024-01-01"],
        ):
            done = subprocess.run([*FKS, *args], env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 2, done.stderr
    assert binance.requests == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM raw.ingest_log").fetchone()[0] == 0


def test_project_errors_are_one_line_bad_input_exit_2_others_exit_1(db_url):
    """The top-level handler: a BadInputError (Binance refusing the request) is exit code 2, another FksError
    (a database that cannot be reached) exit code 1; each one line, no traceback."""
    refusal = b'{"code":-1121,"msg":"Invalid symbol."}'
    with ScriptedServer(lambda request: Reply(400, refusal)) as binance:
        env = dict(os.environ, FKS_DATABASE_URL=db_url, FKS_BINANCE_REST_URL=binance.url)
        args = ["ingest", "binance", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-01"]
        refused = subprocess.run([*FKS, *args], env=env, capture_output=True, text=True, timeout=120)
    closed = f"postgresql://fks@127.0.0.1:{free_port()}/fks"
    env = dict(os.environ, FKS_DATABASE_URL=closed)
    unreachable = subprocess.run([*FKS, "db", "status"], env=env, capture_output=True, text=True, timeout=120)
    for done, code, text in ((refused, 2, "Invalid symbol"), (unreachable, 1, "cannot connect")):
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == code, done.stderr
        assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], done.stderr


TRADE = "{id: t1, symbol: BTCUSDT, side: buy, quantity: 0.01, price: 60000, at: 2024-05-01T00:00:00Z}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("accounts:\n  - {name: a, cash: 1.0e+308}\n", "cash 1e+308 is too large"),
        ("accounts:\n  - {name: a, cash: 1e308}\n", "cash '1e308' is too large"),
        (
            f"accounts:\n  - {{name: a, cash: 1000, trades: [{TRADE.replace('0.01', '1e308')}]}}\n",
            "trade 1: quantity '1e308' is too large",
        ),
        ("accounts:\n  - {name: [a, b], cash: 10}\n", "account 1: name ['a', 'b'] must be text"),
        ("accounts:\n  - {name: a, cash: 10, trades: 'buy BTC'}\n", "account 1 (a): trades must be a list, not str"),
        (
            "accounts:\n  - {name: a, cash: 10, trades: ['buy BTC']}\n",
            "account 1 (a) trade 1: a trade must be a mapping",
        ),
        (
            "accounts:\n  - {name: '@everyone', cash: 10}\n",
            "account 1: name '@everyone' must be text of 1 to 64 characters",
        ),
        ('accounts:\n  - {name: "ok\\n**pwned**", cash: 10}\n', "account 1: name 'ok\\n**pwned**' must be text"),
        (
            f"accounts:\n  - {{name: a, cash: 1000, trades: [{TRADE.replace('2024-05-01', '2999-01-01')}]}}\n",
            "trade 1: time 2999-01-01T00:00:00+00:00 is in the future",
        ),
        (
            "accounts:\n  - {name: a, cash: 10, cash_at: 2999-01-01T00:00:00Z}\n",
            "account 1 (a): cash_at 2999-01-01T00:00:00+00:00 is in the future",
        ),
        ("accounts:\n  - {name: a, cash: 0.000000001}\n", "cash 1e-09 has more than 8 decimal places"),
    ],
)
def test_a_bad_portfolio_file_is_one_line_exit_2_and_nothing_written(db_url, tmp_path, body, field):
    path = tmp_path / "ledger.yaml"
    path.write_text(body)
    result = CliRunner().invoke(
        main, ["portfolio", "import", str(path)], env={"FKS_DATABASE_URL": db_url}, catch_exceptions=False
    )
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert f"{path}: " in lines[0] and field in lines[0] and lines[0].endswith("(nothing was written)")
    with psycopg.connect(db_url) as conn:
        assert (
            conn.execute(
                "SELECT (SELECT count(*) FROM portfolio.accounts) + (SELECT count(*) FROM portfolio.trades)"
            ).fetchone()[0]
            == 0
        )


def test_a_portfolio_file_above_the_size_limit_is_refused_before_it_is_parsed(db_url, tmp_path):
    path = tmp_path / "ledger.yaml"
    path.write_text("accounts:\n  - {name: a, cash: 10}\n" + "# padding\n" * 20 + "[unparsable")
    env = {"FKS_DATABASE_URL": db_url, "FKS_PORTFOLIO_MAX_BYTES": "100"}
    result = CliRunner().invoke(main, ["portfolio", "import", str(path)], env=env, catch_exceptions=False)
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"Error: {path}: the file has {path.stat().st_size:,} bytes: at most 100 (FKS_PORTFOLIO_MAX_BYTES)"
        " (nothing was written)"
    )  # not "not valid YAML": it was never read
    bad = CliRunner().invoke(
        main, ["portfolio", "import", str(path)], env=env | {"FKS_PORTFOLIO_MAX_BYTES": "ten"}, catch_exceptions=False
    )
    assert bad.exit_code == 2 and bad.stderr.strip().startswith(
        "Error: environment: FKS_PORTFOLIO_MAX_BYTES='ten' is not valid"
    )
    assert "\n" not in bad.stderr.strip()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM portfolio.accounts").fetchone()[0] == 0


def binance_day(rows_per_answer: int | None):
    """A Binance-like klines handler: full pages (None), or at most ``rows_per_answer`` rows per answer."""

    def handler(request: Request) -> Reply:
        start, limit = int(request.query["startTime"]), int(request.query["limit"])
        end = int(request.query.get("endTime", start + limit * 60_000 - 1))
        limit = limit if rows_per_answer is None else min(limit, rows_per_answer)
        rows = [
            [t, "100.0", "101.0", "99.0", "100.5", "2.0", t + 59_999, "200.0", 5, "1.0", "100.0", "0"]
            for t in range(start, min(end + 1, start + limit * 60_000), 60_000)
        ]
        return Reply(200, json.dumps(rows).encode(), {"X-MBX-USED-WEIGHT-1M": "2"})

    return handler


def ingest_day(db_url: str, handler, *extra: str):
    with ScriptedServer(handler) as server:
        result = invoke(
            ["ingest", "binance", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-01", *extra],
            {"FKS_DATABASE_URL": db_url, "FKS_BINANCE_REST_URL": server.url},
        )
    return result, server.requests


def test_ingest_binance_refuses_to_shrink_a_complete_day_unless_forced(db_url):
    assert ingest_day(db_url, binance_day(None))[0].exit_code == 0
    for rows, offered in ((0, "0"), (100, "100")):
        result, _ = ingest_day(db_url, binance_day(rows))
        assert result.exit_code == 1, result.output
        assert f"refused to replace spot 1m 2024-01-01: BTCUSDT: 1440 bars held, {offered} offered" in result.output
        assert "--force" in result.output
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone() == (1440,)
            status, error = conn.execute("SELECT status, error FROM raw.ingest_log ORDER BY id DESC LIMIT 1").fetchone()
        assert status == "refused" and f"1440 bars held, {offered} offered" in error
    result, _ = ingest_day(db_url, binance_day(100), "--force")
    assert result.exit_code == 0, result.output
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone() == (100,)


def test_ingest_refuses_days_that_have_not_ended_before_fetching(db_url):
    from datetime import datetime

    today = datetime.now(UTC).date().isoformat()
    for start, end in (("2030-01-01", "2030-01-01"), ("2024-01-01", today)):
        with ScriptedServer(binance_day(None)) as server:
            result = invoke(
                ["ingest", "binance", "--symbols", "BTCUSDT", "--start", start, "--end", end],
                {"FKS_DATABASE_URL": db_url, "FKS_BINANCE_REST_URL": server.url},
            )
        assert result.exit_code == 2, result.output
        line = result.output.strip().splitlines()[-1]  # click's test runner adds its usage lines above
        # A day after today is a bad --end (the option's check); today itself has not ended (the load path's).
        expected = "is after today" if end > today else f"[{end}T00:00:00+00:00"
        assert expected in line and (end > today or "not ended yet" in line), line
        assert server.requests == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone() == (0,)


def test_symbols_are_validated_by_one_rule_on_the_cli_and_in_settings(db_url):
    from fks_pipelines.lib.errors import BadInputError
    from fks_pipelines.settings import Settings

    bad = "BTC'; DROP TABLE raw.binance_klines;--"
    with ScriptedServer(binance_day(None)) as server:
        result = invoke(
            ["ingest", "binance", "--symbols", bad, "--start", "2024-01-01", "--end", "2024-01-01"],
            {"FKS_DATABASE_URL": db_url, "FKS_BINANCE_REST_URL": server.url},
        )
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: --symbols: invalid symbol") and repr(bad.upper()) in line
    assert server.requests == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone() == (0,)
    try:
        Settings.from_env({"FKS_SYMBOLS": f"BTCUSDT,{bad}"})
    except BadInputError as exc:
        assert str(exc).startswith("environment: FKS_SYMBOLS=") and "invalid symbol" in str(exc)
    else:
        raise AssertionError("FKS_SYMBOLS accepted an invalid symbol")
    assert Settings.from_env({"FKS_SYMBOLS": "btcusdt, BTCUSD_PERP"}).symbols == ("BTCUSDT", "BTCUSD_PERP")


def test_failed_rest_fetches_are_logged_and_a_huge_retry_after_gives_up_fast(db_url):
    """Every attempt is in raw.ingest_log, also when Binance refuses the request; a Retry-After above
    FKS_BINANCE_MAX_RETRY_AFTER fails at once instead of sleeping."""
    import time

    replies = {
        "rejected": Reply(400, b'{"code":-1121,"msg":"Invalid symbol."}'),
        "failed": Reply(429, b'{"code":-1003,"msg":"Too many requests"}', {"Retry-After": "100000"}),
    }
    for status, reply in replies.items():
        with ScriptedServer(lambda request, reply=reply: reply) as server:
            env = dict(
                os.environ, FKS_DATABASE_URL=db_url, FKS_BINANCE_REST_URL=server.url, FKS_BINANCE_MAX_RETRY_AFTER="60"
            )
            began = time.monotonic()
            proc = subprocess.run(
                [*FKS, "ingest", "binance", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-01"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        # A request Binance refuses (4xx) is bad input (exit 2); a source that stays unavailable exits 1.
        assert proc.returncode == (2 if status == "rejected" else 1), proc.stderr
        assert "Traceback" not in proc.stderr and len(server.requests) == 1
        with psycopg.connect(db_url) as conn:
            logged, error = conn.execute("SELECT status, error FROM raw.ingest_log ORDER BY id DESC LIMIT 1").fetchone()
        assert logged == status
        if status == "rejected":
            assert "HTTP 400" in error and "Invalid symbol" in error
        else:
            assert "wait 100000s, more than the 60s allowed" in error and time.monotonic() - began < 60

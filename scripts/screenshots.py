"""Screenshots of the real Dagster UI for the README (`make screenshots`; optional, not part of CI).

Starts `fks dev` on 127.0.0.1 over the instance `fks demo` filled (run `make demo` first, or pass --demo), waits
for the code location to load, and captures with Debian's headless chromium:

- docs/img/lineage.png: everything downstream of the raw asset (raw -> dbt layers -> analytics -> knowledge ->
  recommendations), every asset drawn (the global lineage collapses this many assets into their groups);
- docs/img/asset.png: the page of the hourly mart (marts/fct_ohlcv_1h) with its latest materialization;
- docs/img/run.png: the latest run (the demo's) with its steps;
- docs/img/asset_pictures.png: the daily recommendation's last partition, whose ``why_<account>`` entry holds the
  decision's text and pictures ([Show Markdown]).

Chromium comes from apt-get when missing and running as root; otherwise the script says what to install. It uses
the caller's FKS_HOME / FKS_PG_PORT like every `fks` command, and stops `fks dev` (and its children) at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
FKS = [sys.executable, "-m", "fks_pipelines.cli"]
WINDOW = "1600,1000"  # CSS pixels; the PNGs stay well under MAX_BYTES
MAX_BYTES = 400_000  # each picture stays small enough for the repository


def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing and this is root."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, env=env)
        return shutil.which("chromium") or sys.exit("apt-get installed chromium, but it is not on PATH")
    sys.exit("chromium is missing: install Debian's chromium package (apt-get install chromium) and run again")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    reply = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=60).json()
    if "errors" in reply:
        raise RuntimeError(f"Dagster GraphQL error: {reply['errors']}")
    return reply["data"]


def wait_for_ui(port: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until the webserver answers and the code location has loaded (the lineage is empty before that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"fks dev exited early (code {proc.returncode})")
        try:
            nodes = graphql(port, "{ assetNodes { id } }")["assetNodes"]
            if nodes:
                return
        except (httpx.HTTPError, RuntimeError, ValueError):
            pass
        time.sleep(2)
    sys.exit(f"the Dagster UI on port {port} did not load the code location within {timeout:.0f} s")


def latest_run_id(port: int) -> str:
    runs = graphql(port, "{ runsOrError(limit: 1) { ... on Runs { results { runId } } } }")["runsOrError"]["results"]
    if not runs:
        sys.exit("the instance has no run: run `make demo` (or pass --demo) first")
    return runs[0]["runId"]


def capture(browser: str, url: str, target: Path, wait_ms: int, window: str = WINDOW) -> None:
    """One headless screenshot; the virtual-time budget lets the React UI fetch and render before the shot."""
    target.unlink(missing_ok=True)
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace for chromium's sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={window}",
            f"--virtual-time-budget={wait_ms}",
            f"--screenshot={target}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    if not target.exists():
        sys.exit(f"chromium wrote no screenshot for {url}")
    size = target.stat().st_size
    print(f"{target.relative_to(ROOT)}: {size // 1000} KB from {url}")
    if size > MAX_BYTES:
        print(f"  warning: {target.name} is over {MAX_BYTES // 1000} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run `fks demo` first (a fresh instance has no run)")
    parser.add_argument("--port", type=int, default=0, help="the UI's port (default: a free one)")
    parser.add_argument("--wait-ms", type=int, default=20_000, help="chromium's virtual-time budget per page")
    args = parser.parse_args()

    browser = chromium()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    if args.demo:
        subprocess.run([*FKS, "demo"], check=True, env=env, cwd=ROOT)
    port = args.port or free_port()
    IMG.mkdir(parents=True, exist_ok=True)
    log = tempfile.NamedTemporaryFile("w", prefix="fks-screenshots-", suffix=".log", delete=False)  # noqa: SIM115
    print(f"fks dev on 127.0.0.1:{port}, its output in {log.name}")
    dev = subprocess.Popen([*FKS, "dev", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_ui(port, dev)
        run_id = latest_run_id(port)
        # What "Skip" on the UI's first-visit "Join the Dagster community" dialog records, so it is not in the shots.
        graphql(port, "mutation { setNuxSeen }")
        base = f"http://127.0.0.1:{port}"
        lineage = "view=lineage&lineageScope=downstream&lineageDepth=10"
        capture(browser, f"{base}/assets/raw/binance_klines?{lineage}", IMG / "lineage.png", args.wait_ms)
        capture(browser, f"{base}/assets/marts/fct_ohlcv_1h", IMG / "asset.png", args.wait_ms)
        capture(browser, f"{base}/runs/{run_id}", IMG / "run.png", args.wait_ms)
        # The daily recommendation's last partition: why_<account> holds its text and pictures (docs/pictures.md).
        last = graphql(
            port,
            '{ assetOrError(assetKey: {path: ["recommendations", "daily"]}) { ... on Asset {'
            " assetMaterializations(limit: 1) { partition } } } }",
        )["assetOrError"]["assetMaterializations"][0]["partition"]
        page = f"{base}/assets/recommendations/daily?view=partitions&partition={last}"
        capture(browser, page, IMG / "asset_pictures.png", args.wait_ms, "1600,1450")  # down to why_<account>
    finally:
        dev.send_signal(signal.SIGTERM)  # fks dev stops the webserver, daemon and code server with it
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dev.kill()
        log.close()


if __name__ == "__main__":
    main()

"""Test helpers: a real HTTP server on 127.0.0.1 driven by a script of responses, a fake clock, and dbt."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import psycopg


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Request:
    path: str
    query: dict[str, str]
    method: str = "GET"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self):
        import json

        return json.loads(self.body)


class ScriptedServer:
    """Serves ``handler(request) -> Reply`` on 127.0.0.1 (a real socket, a real HTTP exchange)."""

    def __init__(self, handler: Callable[[Request], Reply]):
        self.handler = handler
        self.requests: list[Request] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                self._answer("POST", self.rfile.read(length))

            def do_GET(self):  # noqa: N802
                self._answer("GET", b"")

            def _answer(self, method: str, body: bytes):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                request = Request(parts.path, query, method, body, dict(self.headers.items()))
                outer.requests.append(request)
                reply = outer.handler(request)
                if reply.delay_s:
                    threading.Event().wait(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    """Time that moves only when waited on; records every wait."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(seconds, 0.0)


class Dbt:
    """The real dbt project, run through the dbt CLI resource against the database at ``url``."""

    def __init__(self, url: str):
        from fks_pipelines.defs.dbt.resources import dbt_resource  # dagster-dbt: seconds to import, dbt tests only

        self.url = url
        self.resource = dbt_resource()

    def run(self, *args: str) -> None:
        from fks_pipelines.defs.dbt.resources import dbt_connection

        with dbt_connection(self.url):
            invocation = self.resource.cli(list(args), raise_on_error=False)
            invocation.wait()
        assert invocation.is_successful(), f"dbt {' '.join(args)} failed: {invocation.get_error()}"

    def build(self, min_date: str | None = None, max_date: str | None = None, *extra: str) -> None:
        args = ["build", *extra]
        if min_date:
            args += ["--vars", f'{{"min_date": "{min_date}", "max_date": "{max_date}"}}']
        self.run(*args)

    def rows(self, sql: str) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql).fetchall()


def sample_hourly_bars(symbol: str, start, end) -> dict:
    """Hourly OHLC arrays (float64) of the offline sample's 1-minute bars for ``symbol`` on [start, end)."""
    import polars as pl

    from fks_pipelines.lib.sources.sample import sample_klines

    hourly = (
        sample_klines([symbol], start, end)
        .group_by_dynamic("open_time", every="1h")
        .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last())
    )
    return {c: hourly[c].cast(pl.Float64).to_numpy() for c in ("open", "high", "low", "close")}


def form_parts(request) -> dict[str, tuple[str | None, str, bytes]]:
    """The multipart/form-data body as {field name: (file name, content type, bytes)}, read by the standard
    library's MIME parser (not by the client that wrote it)."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + request.body)
    assert message.get_content_type() == "multipart/form-data"
    return {
        part.get_param("name", header="content-disposition"): (
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }

"""The REST client against a real HTTP server on 127.0.0.1 that speaks Binance's klines protocol.

The server serves a deterministic minute series and injects the failures Binance produces: 429/418 with
Retry-After, 500s, slow responses, truncated JSON. The client's clock is fake, so waits are asserted, not slept.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta

import pytest

from fks_pipelines.lib.errors import BadInputError, SourceUnavailableError
from fks_pipelines.lib.sources import RestSource
from fks_pipelines.lib.sources.binance_rest import BinanceRestClient
from tests.support import FakeClock, Reply, Request, ScriptedServer

UTC = UTC
DAY = datetime(2024, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000


def kline_row(open_ms: int) -> list:
    price = 40000 + (open_ms // MINUTE_MS) % 97
    return [
        open_ms,
        f"{price}.00",
        f"{price + 5}.00",
        f"{price - 5}.00",
        f"{price + 1}.00",
        "1.5",
        open_ms + MINUTE_MS - 1,
        "60000.0",
        12,
        "0.7",
        "28000.0",
        "0",
    ]


def klines_body(request: Request, limit_cap: int = 1000) -> bytes:
    start = int(request.query["startTime"])
    end = int(request.query.get("endTime", start + 10**12))
    limit = min(int(request.query.get("limit", 500)), limit_cap)
    first = -(-start // MINUTE_MS) * MINUTE_MS
    rows = [kline_row(t) for t in range(first, min(end + 1, first + limit * MINUTE_MS), MINUTE_MS)]
    return json.dumps(rows).encode()


class BinanceLike:
    """A klines endpoint with a weight counter and a queue of injected faults (served before real answers)."""

    def __init__(self, faults: list[Reply] | None = None, weight_per_call: int = 2, clock: FakeClock | None = None):
        self.faults = list(faults or [])
        self.weight = 0
        self.weight_per_call = weight_per_call
        self.clock = clock  # when given, the weight counter resets each minute of this clock, as Binance's does
        self.minute = None

    def __call__(self, request: Request) -> Reply:
        if self.faults:
            return self.faults.pop(0)
        if self.clock is not None:
            minute = int(self.clock.now() // 60)
            if self.minute is not None and minute != self.minute:
                self.weight = 0
            self.minute = minute
        self.weight += self.weight_per_call
        return Reply(
            200, klines_body(request), {"X-MBX-USED-WEIGHT-1M": str(self.weight), "Content-Type": "application/json"}
        )


def client(server: ScriptedServer, clock: FakeClock, **kwargs) -> BinanceRestClient:
    return BinanceRestClient(
        market="spot", base_url=server.url, clock=clock, rng=random.Random(7), timeout_s=2, **kwargs
    )


def test_paging_covers_the_day_without_duplicates():
    with ScriptedServer(BinanceLike()) as server:
        c = client(server, FakeClock())
        frame = c.fetch("BTCUSDT", "1m", DAY, DAY + timedelta(days=1))
    assert frame.height == 1440
    assert frame["open_time"].n_unique() == 1440
    assert frame["open_time"].min() == DAY and frame["open_time"].max() == DAY + timedelta(minutes=1439)
    # 1440 bars with limit 1000: exactly two pages, the second starting right after the first.
    assert [r.query["startTime"] for r in server.requests] == [
        str(int(DAY.timestamp() * 1000)),
        str(int(DAY.timestamp() * 1000) + 1000 * MINUTE_MS),
    ]
    assert all(r.path == "/api/v3/klines" and r.query["limit"] == "1000" for r in server.requests)


def test_429_waits_exactly_retry_after_then_completes():
    faults = [Reply(429, b'{"code":-1003,"msg":"Too many requests"}', {"Retry-After": "7"})]
    with ScriptedServer(BinanceLike(faults)) as server:
        clock = FakeClock()
        frame = client(server, clock).fetch("BTCUSDT", "1m", DAY, DAY + timedelta(hours=2))
    assert frame.height == 120
    assert clock.sleeps == [7.0]


def test_418_ban_waits_retry_after():
    faults = [Reply(418, b'{"code":-1003,"msg":"banned"}', {"Retry-After": "120"})]
    with ScriptedServer(BinanceLike(faults)) as server:
        clock = FakeClock()
        frame = client(server, clock).fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=30))
    assert frame.height == 30
    assert clock.sleeps == [120.0]


def test_5xx_and_truncated_json_are_retried_with_capped_jittered_backoff():
    faults = [Reply(500, b"oops"), Reply(502, b"bad gateway"), Reply(200, b'[[1704067200000,"4')]
    with ScriptedServer(BinanceLike(faults)) as server:
        clock = FakeClock()
        frame = client(server, clock, backoff_base_s=1.0, backoff_cap_s=3.0).fetch(
            "BTCUSDT", "1m", DAY, DAY + timedelta(minutes=5)
        )
    assert frame.height == 5
    assert len(clock.sleeps) == 3
    # Equal jitter: attempt n waits between cap_n/2 and cap_n, with cap_n = min(3, 1 * 2**(n-1)).
    for n, wait in enumerate(clock.sleeps, start=1):
        cap = min(3.0, 2 ** (n - 1))
        assert cap / 2 <= wait <= cap


def test_slow_response_times_out_and_is_retried():
    faults = [Reply(200, b"[]", delay_s=1.5)]
    with ScriptedServer(BinanceLike(faults)) as server:
        clock = FakeClock()
        c = BinanceRestClient(market="spot", base_url=server.url, clock=clock, rng=random.Random(1), timeout_s=0.3)
        frame = c.fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=3))
    assert frame.height == 3
    assert len(clock.sleeps) == 1


def test_circuit_opens_after_repeated_failures_with_a_clear_error():
    faults = [Reply(503, b"down")] * 10
    with ScriptedServer(BinanceLike(faults)) as server:
        c = client(server, FakeClock(), circuit_threshold=4)
        with pytest.raises(
            SourceUnavailableError,
            match=r"circuit open after 4 consecutive failures; last: HTTP 503 on GET http://127\.0\.0\.1",
        ):
            c.fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=3))
        assert len(server.requests) == 4


def test_persistently_truncated_json_never_returns_partial_data():
    faults = [Reply(200, b'[[1704067200000,"42000.0"')] * 10
    with (
        ScriptedServer(BinanceLike(faults)) as server,
        pytest.raises(SourceUnavailableError, match="malformed JSON"),
    ):
        client(server, FakeClock(), circuit_threshold=3).fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=3))


def test_malformed_row_is_rejected_naming_request_and_row():
    bad = [kline_row(int(DAY.timestamp() * 1000)), [1704067260000, "1", "2"]]
    faults = [Reply(200, json.dumps(bad).encode())]
    with ScriptedServer(BinanceLike(faults)) as server, pytest.raises(BadInputError) as err:
        client(server, FakeClock()).fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=3))
    assert "GET http://127.0.0.1" in str(err.value) and "symbol=BTCUSDT" in str(err.value)
    assert err.value.row == 2


def test_weight_budget_is_respected_by_waiting_for_the_next_minute():
    """With Binance reporting weight near the budget, the client waits for the minute to roll over."""
    clock = FakeClock(start=1_699_999_990.0)  # 10 s into a minute (1_699_999_980 is a minute boundary)
    api = BinanceLike(weight_per_call=2, clock=clock)
    api.weight = 4796  # budget is 80% of 6000 = 4800: two more calls fit (4798, 4800), the third must wait
    with ScriptedServer(api) as server:
        c = client(server, clock, limit=100)
        frame = c.fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=300))
    assert frame.height == 300
    assert len(server.requests) == 3
    assert clock.sleeps == [pytest.approx(50.05)]  # to the next minute, once
    assert c.used_weight <= c.weight_budget
    assert api.weight == 2  # the call after the wait was counted in the new minute


def test_futures_weight_depends_on_limit():
    c = BinanceRestClient(market="usdm", base_url="http://127.0.0.1:9")
    assert [c.api.weight(n) for n in (50, 100, 499, 500, 1000, 1500)] == [1, 2, 2, 5, 5, 10]
    assert c.api.path == "/fapi/v1/klines"


def test_unknown_market_is_rejected():
    with pytest.raises(BadInputError, match="REST klines are available for"):
        BinanceRestClient(market="options")


def test_retry_after_beyond_the_cap_gives_up_at_once_without_sleeping():
    faults = [Reply(429, b'{"code":-1003,"msg":"Too many requests"}', {"Retry-After": "100000"})]
    with ScriptedServer(BinanceLike(faults)) as server:
        clock = FakeClock()
        with pytest.raises(
            SourceUnavailableError, match=r"wait 100000s, more than the 900s allowed \(FKS_BINANCE_MAX_RETRY_AFTER\)"
        ):
            client(server, clock).fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=3))
        assert clock.sleeps == [] and len(server.requests) == 1
    # The cap is the client's setting: 120 s is fine by default, too long under a 60 s cap.
    faults = [Reply(418, b'{"code":-1003,"msg":"banned"}', {"Retry-After": "120"})]
    with ScriptedServer(BinanceLike(faults)) as server:
        clock = FakeClock()
        with pytest.raises(SourceUnavailableError, match=r"HTTP 418.*wait 120s, more than the 60s allowed"):
            client(server, clock, max_retry_after_s=60).fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=3))
        assert clock.sleeps == []


def test_every_wait_is_logged_with_the_request_the_duration_and_the_reason(caplog):
    faults = [Reply(429, b'{"code":-1003,"msg":"Too many requests"}', {"Retry-After": "7"})]
    with (
        ScriptedServer(BinanceLike(faults)) as server,
        caplog.at_level(logging.INFO, "fks_pipelines.lib.sources.binance_rest"),
    ):
        client(server, FakeClock()).fetch("BTCUSDT", "1m", DAY, DAY + timedelta(minutes=3))
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("waiting 7.0s before retrying GET http://127.0.0.1")
    assert "symbol=BTCUSDT" in line and "HTTP 429 (rate limit; Retry-After 7)" in line


def test_symbols_are_validated_before_any_request():
    with ScriptedServer(BinanceLike()) as server:
        for bad in ("BTC'; DROP TABLE raw.binance_klines;--", "btcusdt", "B", "BTCUSDT/../X"):
            with pytest.raises(BadInputError, match="invalid symbol"):
                client(server, FakeClock()).fetch(bad, "1m", DAY, DAY + timedelta(minutes=3))
        assert server.requests == []


class ListedAt(BinanceLike):
    """A symbol whose first bar is ``listed``: nothing before it, as Binance answers for a new listing."""

    def __init__(self, listed: datetime):
        super().__init__()
        self.listed_ms = int(listed.timestamp() * 1000)

    def __call__(self, request: Request) -> Reply:
        start = max(int(request.query["startTime"]), self.listed_ms)
        query = dict(request.query, startTime=str(start))
        return super().__call__(Request(request.path, query))


def rest_source(server: ScriptedServer) -> RestSource:
    return RestSource(lambda market: client(server, FakeClock()))


def test_a_symbol_listed_mid_day_is_proven_absent_before_its_first_bar():
    listed = DAY + timedelta(hours=12)
    with ScriptedServer(ListedAt(listed)) as server:
        batch = rest_source(server).fetch_day("spot", ["BTCUSDT"], "1m", DAY.date())
    assert batch.frame.height == 720
    (absent,) = batch.absent
    assert (absent.symbol, absent.start, absent.end) == ("BTCUSDT", DAY, listed)
    assert "first 1m bar Binance has for BTCUSDT opens at 2024-01-01T12:00:00+00:00" in absent.evidence
    assert server.requests[-1].query["startTime"] == "0" and server.requests[-1].query["limit"] == "1"


def test_an_empty_or_short_answer_proves_nothing():
    # Binance answering [] (or a complete day) gives no proof: the loader will refuse to shrink a held day.
    with ScriptedServer(lambda request: Reply(200, b"[]")) as server:
        batch = rest_source(server).fetch_day("spot", ["BTCUSDT"], "1m", DAY.date())
    assert batch.frame.height == 0 and batch.absent == ()
    with ScriptedServer(BinanceLike()) as server:
        batch = rest_source(server).fetch_day("spot", ["BTCUSDT"], "1m", DAY.date())
    assert batch.frame.height == 1440 and batch.absent == () and len(server.requests) == 2

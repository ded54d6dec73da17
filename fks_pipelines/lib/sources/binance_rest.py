"""Binance REST klines (spot ``/api/v3/klines``, USD-M futures ``/fapi/v1/klines``), polite and complete.

Rules we keep so we are never banned and never return a silent partial result:
- weight: each response's ``X-MBX-USED-WEIGHT-1M`` is tracked; before a call that would take the minute's
  used weight above the budget (a safety margin under Binance's limit) we wait for the next minute;
- 429 and 418: wait exactly ``Retry-After`` seconds, then go on (a 418 means we were banned: never hammer);
  a Retry-After above ``max_retry_after_s`` (FKS_BINANCE_MAX_RETRY_AFTER) gives up at once, without waiting;
- every wait is logged: which request, how long, why;
- 5xx, timeouts, connection errors and truncated bodies: retry with capped exponential backoff and jitter;
- after ``circuit_threshold`` consecutive failures the circuit opens and SourceUnavailableError says why;
- paging by ``startTime`` until the requested range is covered, with duplicates and gaps detected.
Time is read and waited through an injectable clock so tests never sleep for real.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import httpx
import polars as pl

from fks_pipelines.lib.errors import BadInputError, SourceUnavailableError
from fks_pipelines.lib.klines import (
    empty_klines,
    interval_timedelta,
    klines_from_binance_strings,
)
from fks_pipelines.lib.sources.files import rest_rows_to_strings
from fks_pipelines.lib.symbols import check_symbol

log = logging.getLogger(__name__)

DEFAULT_BASE_URLS = {
    # Binance's keyless market-data hosts.
    "spot": "https://data-api.binance.vision",
    "usdm": "https://fapi.binance.com",
}
DEFAULT_MAX_RETRY_AFTER_S = 900.0  # 15 minutes: a longer Retry-After (a long ban) fails the load instead


@dataclass(frozen=True)
class MarketApi:
    path: str
    max_limit: int
    weight_budget_per_minute: int

    def weight(self, limit: int) -> int:
        raise NotImplementedError


class _SpotApi(MarketApi):
    def weight(self, limit: int) -> int:
        return 2  # GET /api/v3/klines costs 2 whatever the limit


class _UsdmApi(MarketApi):
    def weight(self, limit: int) -> int:
        # GET /fapi/v1/klines: weight by limit: [1,100) 1, [100,500) 2, [500,1000] 5, > 1000 10
        if limit < 100:
            return 1
        if limit < 500:
            return 2
        if limit <= 1000:
            return 5
        return 10


MARKET_APIS: dict[str, MarketApi] = {
    "spot": _SpotApi("/api/v3/klines", max_limit=1000, weight_budget_per_minute=6000),
    "usdm": _UsdmApi("/fapi/v1/klines", max_limit=1000, weight_budget_per_minute=2400),
}


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


@dataclass
class BinanceRestClient:
    """Fetches klines for one market. ``budget_fraction`` keeps us that far under the per-minute weight limit."""

    market: str = "spot"
    base_url: str | None = None
    timeout_s: float = 10.0
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    circuit_threshold: int = 5
    budget_fraction: float = 0.8
    limit: int | None = None
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    http: httpx.Client | None = None
    on_page: Callable[[str, int], None] | None = None
    # State: the weight Binance reports for the current minute, and consecutive failures.
    used_weight: int = 0
    _weight_minute: int = -1
    _consecutive_failures: int = 0
    requests_made: int = 0

    def __post_init__(self) -> None:
        if self.market not in MARKET_APIS:
            raise BadInputError(f"REST klines are available for {', '.join(MARKET_APIS)}, not {self.market!r}")
        self.api = MARKET_APIS[self.market]
        self.base_url = (self.base_url or DEFAULT_BASE_URLS[self.market]).rstrip("/")
        self.limit = self.limit or self.api.max_limit
        self._own_http = self.http is None
        if self.http is None:
            self.http = httpx.Client(timeout=self.timeout_s)

    def close(self) -> None:
        if self._own_http and self.http is not None:
            self.http.close()

    # -- weight budget ------------------------------------------------------------------------------------
    @property
    def weight_budget(self) -> int:
        return int(self.api.weight_budget_per_minute * self.budget_fraction)

    def _minute(self) -> int:
        return int(self.clock.now() // 60)

    def _respect_budget(self, weight: int) -> None:
        if self._minute() != self._weight_minute:
            self._weight_minute, self.used_weight = self._minute(), 0
        if self.used_weight + weight > self.weight_budget:
            wait = 60 - (self.clock.now() % 60) + 0.05
            log.info(
                "waiting %.1fs for the next minute: used weight %d of a %d budget",
                wait,
                self.used_weight,
                self.weight_budget,
            )
            self.clock.sleep(wait)
            self._weight_minute, self.used_weight = self._minute(), 0

    def _record_weight(self, response: httpx.Response, weight: int) -> None:
        header = response.headers.get("X-MBX-USED-WEIGHT-1M") or response.headers.get("x-mbx-used-weight-1m")
        if header and header.isdigit():
            self.used_weight = int(header)
        else:
            self.used_weight += weight

    # -- one request, with retries ------------------------------------------------------------------------
    def _describe(self, params: dict) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"GET {self.base_url}{self.api.path}?{query}"

    def _get_once(self, params: dict, where: str) -> list:
        weight = self.api.weight(int(params["limit"]))
        self._respect_budget(weight)
        self.requests_made += 1
        if self.http is None or self.base_url is None:  # both set by __post_init__
            raise RuntimeError("BinanceRestClient has no HTTP client or base URL")
        try:
            response = self.http.get(self.base_url + self.api.path, params=params, timeout=self.timeout_s)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timeout after {self.timeout_s}s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection error ({exc})") from None
        self._record_weight(response, weight)
        if response.status_code in (418, 429):
            retry_after = response.headers.get("Retry-After")
            wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else 60.0
            raise _Retryable(f"HTTP {response.status_code} (rate limit; Retry-After {retry_after})", wait=wait)
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise BadInputError(f"HTTP {response.status_code}: {response.text[:200]}", where=where)
        try:
            return json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            # A body cut short in transit is transient; if it keeps happening the error says so.
            raise _Retryable(f"malformed JSON body ({exc}; {len(response.content)} bytes)") from None

    def _get(self, params: dict) -> list:
        where = self._describe(params)
        last = "no attempt"
        for attempt in range(1, self.max_attempts + 1):
            try:
                payload = self._get_once(params, where)
            except _Retryable as exc:
                last = exc.reason
                if exc.wait is not None and exc.wait > self.max_retry_after_s:
                    raise SourceUnavailableError(
                        f"{last} on {where}: Binance asks to wait {exc.wait:g}s, "
                        f"more than the {self.max_retry_after_s:g}s allowed (FKS_BINANCE_MAX_RETRY_AFTER); "
                        "giving up without waiting"
                    ) from None
                self._consecutive_failures += 1
                if self._consecutive_failures >= self.circuit_threshold:
                    raise SourceUnavailableError(
                        f"circuit open after {self._consecutive_failures} consecutive failures; last: {last} on {where}"
                    ) from None
                if exc.wait is not None:
                    wait = exc.wait  # Retry-After is an instruction: exactly that long
                else:
                    cap = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
                    wait = self.rng.uniform(cap / 2, cap)  # "equal jitter": never zero, never above the cap
                if attempt < self.max_attempts:
                    log.warning(
                        "waiting %.1fs before retrying %s (attempt %d of %d): %s",
                        wait,
                        where,
                        attempt,
                        self.max_attempts,
                        last,
                    )
                    self.clock.sleep(wait)
                continue
            self._consecutive_failures = 0
            return payload
        raise SourceUnavailableError(f"gave up after {self.max_attempts} attempts; last: {last} on {where}")

    # -- paging -------------------------------------------------------------------------------------------
    def iter_pages(self, symbol: str, interval: str, start: datetime, end: datetime) -> Iterator[pl.DataFrame]:
        """Pages of validated klines with ``start <= open_time < end``, in order, without duplicates."""
        check_symbol(symbol, where=f"{self.base_url}{self.api.path}")
        step = interval_timedelta(interval)
        step_ms = int(step.total_seconds() * 1000)
        cursor = int(start.timestamp() * 1000)
        end_ms = int(end.timestamp() * 1000)
        last_open: int | None = None
        limit = self.limit
        if limit is None:  # set by __post_init__
            raise RuntimeError("BinanceRestClient has no page limit")
        while cursor < end_ms:
            params = {
                "symbol": symbol,
                "interval": interval,
                "startTime": cursor,
                "endTime": end_ms - 1,
                "limit": limit,
            }
            where = self._describe(params)
            rows = self._get(params)
            if not isinstance(rows, list):
                raise BadInputError(f"expected a JSON array, got {type(rows).__name__}: {str(rows)[:200]}", where=where)
            if not rows:
                break
            frame = klines_from_binance_strings(
                rest_rows_to_strings(rows, where=where),
                market=self.market,
                symbol=symbol,
                interval=interval,
                where=where,
            )
            opens = [int(r[0]) for r in rows]
            if opens[0] < cursor or opens[-1] >= end_ms:
                raise BadInputError(
                    f"response holds bars outside the requested range [{cursor}, {end_ms})", where=where
                )
            if last_open is not None and opens[0] <= last_open:
                raise BadInputError(f"page overlaps the previous page at open_time {opens[0]}", where=where)
            if opens != sorted(opens):
                raise BadInputError("klines are not in ascending open_time order", where=where)
            last_open = opens[-1]
            if self.on_page:
                self.on_page(symbol, frame.height)
            yield frame
            if len(rows) < limit:
                break
            cursor = last_open + step_ms

    def first_open_time(self, symbol: str, interval: str) -> datetime | None:
        """When the first bar Binance has for ``symbol`` opens (one request from the epoch), or None if it has none."""
        check_symbol(symbol, where=f"{self.base_url}{self.api.path}")
        params = {"symbol": symbol, "interval": interval, "startTime": 0, "limit": 1}
        where = self._describe(params)
        rows = rest_rows_to_strings(self._get(params), where=where)
        if rows.height == 0:
            return None
        first = klines_from_binance_strings(rows, market=self.market, symbol=symbol, interval=interval, where=where)
        return first["open_time"][0].astimezone(UTC)

    def fetch(self, symbol: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        pages = list(self.iter_pages(symbol, interval, start, end))
        return pl.concat(pages) if pages else empty_klines()

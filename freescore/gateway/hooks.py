"""The backend's webhooks over treq: POST on connect, PUT per message, DELETE on close.

One HTTPClient over one persistent connection pool serves every connection.
Each call fires with a `HookResult` and never fails, so callers decide by
looking at the result rather than by catching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import treq
from prometheus_client import Counter
from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool

from freescore.gateway import logic, wire


@dataclass(frozen=True)
class HookResult:
    status: int | None
    """HTTP status, or None when no answer came (connection error or timeout)."""
    body: bytes = b""
    timed_out: bool = False
    error: str = ""

    def describe(self) -> str:
        if self.timed_out:
            return "timeout"
        if self.status is None:
            return f"error ({self.error})"
        return f"HTTP {self.status}"


class Backend:
    """The backend at `api_uri`, called with a shared pool and a per-request timeout."""

    def __init__(self, reactor: Any, api_uri: str, timeout: float, pool_size: int, registry: Any) -> None:
        self.reactor = reactor
        self.api_uri = api_uri
        self.timeout = timeout
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = pool_size
        self.pool.cachedConnectionTimeout = 60
        self.client = HTTPClient(Agent(reactor, pool=self.pool, connectTimeout=timeout))
        self.calls = Counter(
            "freescore_gateway_hooks", "Backend hook calls by hook and outcome", ["hook", "outcome"],
            registry=registry,
        )

    def call(self, method: str, conn_id: str, credential: str, content_type: str, body: bytes) -> Deferred[HookResult]:
        headers = {"Content-Type": [content_type], "Authorization": [credential]}
        timed_out = [False]
        d: Deferred[Any] = self.client.request(method, wire.hook_url(self.api_uri, conn_id), headers=headers, data=body)
        d.addCallback(lambda resp: treq.content(resp).addCallback(lambda data: HookResult(resp.code, data)))

        def expire() -> None:
            timed_out[0] = True
            d.cancel()

        timer = self.reactor.callLater(self.timeout, expire)

        def finish(result: HookResult | Failure) -> HookResult:
            if timer.active():
                timer.cancel()
            if isinstance(result, Failure):
                result = HookResult(None, timed_out=timed_out[0], error=result.getErrorMessage())
            self.calls.labels(hook=method, outcome=_outcome(result)).inc()
            return result

        d.addBoth(finish)
        return d

    def connect(self, conn_id: str, credential: str, ws: str, timeout_ms: int) -> Deferred[wire.Decision]:
        d = self.call("POST", conn_id, credential, wire.TEXT_TYPE, wire.connect_body(ws, timeout_ms))
        return d.addCallback(decide)

    def message(self, conn_id: str, credential: str, hook: logic.Hook) -> Deferred[HookResult]:
        ctype = wire.BINARY_TYPE if hook.binary else wire.TEXT_TYPE
        return self.call("PUT", conn_id, credential, ctype, hook.payload)

    def close(self, conn_id: str, credential: str, ws: str, delays: tuple[float, ...]) -> Deferred[HookResult]:
        """DELETE with retries on connection errors, timeouts and 5xx; fires with the last result."""
        done: Deferred[HookResult] = Deferred()

        def attempt(n: int) -> None:
            d = self.call("DELETE", conn_id, credential, wire.TEXT_TYPE, wire.close_body(ws))
            d.addCallback(check, n)

        def check(result: HookResult, n: int) -> None:
            delay = logic.close_retry_delay(n, result.status, delays)
            if delay is None:
                done.callback(result)
            else:
                self.reactor.callLater(delay, attempt, n + 1)

        attempt(1)
        return done

    def stop(self) -> Deferred[Any]:
        return self.pool.closeCachedConnections()


def decide(result: HookResult) -> wire.Decision:
    if result.timed_out:
        return wire.DENY_BACKEND_TIMEOUT
    if result.status is None:
        return wire.DENY_BACKEND_ERROR
    return wire.admission(result.status, result.body)


def _outcome(result: HookResult) -> str:
    if result.timed_out:
        return "timeout"
    if result.status is None:
        return "error"
    return f"{result.status // 100}xx"

"""The backend's webhooks: POST on connect, PUT per message, DELETE on close.

One Twisted Agent over one persistent connection pool (TCP_NODELAY) serves
every connection. The pool (`hookpool`) reuses only connections the backend
keeps open and resends, once, a hook that a reused connection dropped
unanswered; its `Answer` reads the answers: the connect hook's body up to
`wire.CONNECT_ANSWER_LIMIT`, the others' not kept at all.
Each call fires with a `HookResult` and never fails, so callers decide by
looking at the result rather than by catching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperlink import URL
from prometheus_client import Counter
from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.web._newclient import Request
from twisted.web.client import URI, Agent, BrowserLikePolicyForHTTPS, _StandardEndpointFactory
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from freescore.gateway import logic, wire
from freescore.gateway.hookpool import Answer, Body, HookPool, describe


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

    def __init__(self, reactor: Any, api_uri: str, timeout: float, pool_size: int, registry: Any,
                 log: Any = None) -> None:
        self.reactor = reactor
        self.api_uri = api_uri
        self.timeout = timeout
        self.log = log
        self.pool = HookPool(reactor, self._resent)
        self.pool.maxPersistentPerHost = pool_size
        self.pool.cachedConnectionTimeout = 60
        endpoints = _NoDelayEndpoints(_StandardEndpointFactory(reactor, BrowserLikePolicyForHTTPS(), timeout, None))
        self.agent = Agent.usingEndpointFactory(reactor, endpoints, pool=self.pool)
        # treq's HTTPClient parses and re-encodes the URL on every request (~0.2 ms);
        # hooks go to one base URL, so it is encoded once and the pooled agent is
        # called directly; treq reads the response bodies.
        self._base = URI.fromBytes(URL.from_text(api_uri).to_uri().to_text().rstrip("/").encode("ascii"))
        self._endpoints = endpoints
        # At most one request per pooled connection: when the backend slows down,
        # hooks wait here instead of opening ever more connections.
        self.slots = DeferredSemaphore(pool_size)
        self.calls = Counter(
            "freescore_gateway_hooks", "Backend hook calls by hook and outcome", ["hook", "outcome"],
            registry=registry,
        )
        self._counters: dict[tuple[str, str], Any] = {}
        self.resends = Counter(
            "freescore_gateway_hook_resends", "Hooks sent again after a reused backend connection dropped them",
            ["hook"], registry=registry,
        )

    def call(self, method: str, conn_id: str, credential: str, content_type: str, body: bytes,
             keep: int | None = None) -> Deferred[HookResult]:
        """One hook; `keep` is how much of the answer's body it reads (None: none of it, the answer is ignored)."""
        headers = Headers({b"content-type": [content_type.encode("ascii")],
                           b"authorization": [credential.encode("utf-8")]})
        timed_out = [False]
        base = self._base
        uri = URI(base.scheme, base.netloc, base.host, base.port, base.path + b"/" + conn_id.encode("ascii"),
                  b"", base.query, b"")

        def send(_: Any) -> Deferred[HookResult]:
            r: Deferred[Any] = self._request(method.encode("ascii"), uri, headers, Body(body))
            r.addCallback(_read_answer, keep)
            return r.addBoth(_release, self.slots)

        d: Deferred[Any] = self.slots.acquire().addCallback(send)

        def expire() -> None:
            timed_out[0] = True
            d.cancel()

        timer = self.reactor.callLater(self.timeout, expire)

        def finish(result: HookResult | Failure) -> HookResult:
            if timer.active():
                timer.cancel()
            if isinstance(result, Failure):
                result = HookResult(None, timed_out=timed_out[0], error=describe(result))
            key = (method, _outcome(result))
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self.calls.labels(hook=method, outcome=key[1])
            counter.inc()
            return result

        d.addBoth(finish)
        return d

    def _resent(self, request: Request, why: Any) -> None:
        method = request.method.decode("ascii")
        conn_id = request.uri.rsplit(b"/", 1)[-1].decode("ascii", "replace")
        self.resends.labels(hook=method).inc()
        if self.log is not None:
            self.log.warn("gateway: {method} hook for {id} got no answer on a reused backend connection ({why}); "
                          "sending it again on a new connection", method=method, id=conn_id, why=describe(why))

    def _request(self, method: bytes, uri: URI, headers: Headers, body: Body) -> Deferred[Any]:
        """Agent.request without re-parsing the URL (Twisted parses every request's URL again)."""
        with_endpoint = getattr(self.agent, "_requestWithEndpoint", None)
        if with_endpoint is None:
            return self.agent.request(method, uri.toBytes(), headers, body)
        key = (uri.scheme, uri.host, uri.port)
        return with_endpoint(key, self._endpoints.endpointForURI(uri), method, uri, headers, body, uri.originForm)

    def connect(self, conn_id: str, credential: str, ws: str, timeout_ms: int) -> Deferred[wire.Decision]:
        d = self.call("POST", conn_id, credential, wire.TEXT_TYPE, wire.connect_body(ws, timeout_ms),
                      keep=wire.CONNECT_ANSWER_LIMIT)
        return d.addCallback(decide)

    def message(self, conn_id: str, credential: str, hook: logic.Hook) -> Deferred[HookResult]:
        ctype = wire.BINARY_TYPE if hook.binary else wire.TEXT_TYPE
        return self.call("PUT", conn_id, credential, ctype, hook.payload)

    def close(self, conn_id: str, credential: str, ws: str, delays: tuple[float, ...]) -> Deferred[HookResult]:
        """DELETE with retries on connection errors, timeouts and 5xx; fires with the last result.

        Methods with explicit arguments rather than two closures that call each
        other: those formed a reference cycle, left to the collector on every close.
        """
        done: Deferred[HookResult] = Deferred()
        self._close_attempt(done, conn_id, credential, ws, delays, 1)
        return done

    def _close_attempt(self, done: Deferred[HookResult], conn_id: str, credential: str, ws: str,
                       delays: tuple[float, ...], n: int) -> None:
        d = self.call("DELETE", conn_id, credential, wire.TEXT_TYPE, wire.close_body(ws))
        d.addCallback(self._close_checked, done, conn_id, credential, ws, delays, n)

    def _close_checked(self, result: HookResult, done: Deferred[HookResult], conn_id: str, credential: str,
                       ws: str, delays: tuple[float, ...], n: int) -> None:
        delay = logic.close_retry_delay(n, result.status, delays)
        if delay is None:
            done.callback(result)
        else:
            self.reactor.callLater(delay, self._close_attempt, done, conn_id, credential, ws, delays, n + 1)

    def stop(self) -> Deferred[Any]:
        return self.pool.closeCachedConnections()


def _read_answer(response: Any, keep: int | None) -> Deferred[HookResult]:
    answer = Answer(keep)
    response.deliverBody(answer)
    return answer.done.addCallback(_answered, response.code)


def _answered(body: bytes, status: int) -> HookResult:
    return HookResult(status, body)


def _release(result: Any, slots: DeferredSemaphore) -> Any:
    slots.release()
    return result


@implementer(IAgentEndpointFactory)
class _NoDelayEndpoints:
    """Hook connections with TCP_NODELAY: a request's head and body are separate
    writes, and Nagle plus the backend's delayed ACK would add ~40 ms to each hook."""

    def __init__(self, standard: Any) -> None:
        self._standard = standard

        self._cache: dict[tuple[bytes, bytes, int], Any] = {}

    def endpointForURI(self, uri: Any) -> Any:
        # Agent asks for every request; building a HostnameEndpoint IDNA-encodes the host each time.
        key = (uri.scheme, uri.host, uri.port)
        endpoint = self._cache.get(key)
        if endpoint is None:
            endpoint = self._cache[key] = _NoDelay(self._standard.endpointForURI(uri))
        return endpoint


@implementer(IStreamClientEndpoint)
class _NoDelay:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect(self, factory: Any) -> Deferred[Any]:
        return self._inner.connect(factory).addCallback(_set_nodelay)


def _set_nodelay(proto: Any) -> Any:
    transport = getattr(proto, "transport", None)
    while transport is not None and not hasattr(transport, "setTcpNoDelay"):
        transport = getattr(transport, "transport", None)  # TLS wraps TCP
    if transport is not None:
        try:
            transport.setTcpNoDelay(True)
        except OSError:
            pass
    return proto


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

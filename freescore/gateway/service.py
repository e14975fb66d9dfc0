"""The gateway service: the client endpoint, the push API, the hooks and the routing.

Connections are registered in the hub's presence (space `gateway`, info
`{"node": ...}`). A push for a connection held here is delivered directly;
one held by another node is sent as a command on that node's channel (see
`routing`), so with the Redis hub any node can take any push, and 410 means
no node holds the id.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from freescore.effects import ConnId, Effect, PeerEffects, Timers, apply_effects
from freescore.gateway import logic, wire
from freescore.gateway.adapter import GatewayProtocol, PushAPI
from freescore.gateway.hooks import Backend, HookResult
from freescore.gateway.routing import SPACE, Reply, Router
from freescore.gateway.settings import Settings, push_listeners
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.websocket import WebSocketEndpoint

SHUTDOWN_WAIT = 10.0


class LevelLog:
    """The gateway's log lines, filtered by `log_level` (the seed's LOG_LEVEL)."""

    ORDER = {"debug": 0, "info": 1, "warn": 2, "error": 3}

    def __init__(self, level: str) -> None:
        self._log = Logger(namespace="freescore.gateway")
        self._min = self.ORDER[level]

    def debug(self, fmt: str, **kw: Any) -> None:
        if self._min <= 0:
            self._log.debug(fmt, **kw)

    def info(self, fmt: str, **kw: Any) -> None:
        if self._min <= 1:
            self._log.info(fmt, **kw)

    def warn(self, fmt: str, **kw: Any) -> None:
        if self._min <= 2:
            self._log.warn(fmt, **kw)

    def error(self, fmt: str, **kw: Any) -> None:
        self._log.error(fmt, **kw)


class GatewayService(PeerEffects, ProtocolService[Settings]):
    """The client endpoint, the push API, the hooks to the backend and push routing between nodes."""

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = self.settings
        self.log = LevelLog(s.log_level)
        self.trusted_proxies = s.networks("trusted_proxies")
        self.push_networks = s.networks("push_allow")
        self.lifetime = logic.Timers(s.idle_timeout, s.max_duration)
        """The idle and maximum-duration rules."""
        self.timers = Timers(ctx.reactor)
        """Each connection's next idle/max-duration check, keyed by its id (`Arm` effects)."""
        registry = ctx.metrics.registry
        self.backend = Backend(ctx.reactor, s.api_uri, s.hook_timeout / 1000.0, s.hook_pool_size, registry,
                               log=self.log)
        self.refused = Counter("freescore_gateway_refused", "Handshakes refused by outcome", ["code"],
                               registry=registry)
        self.backlog = logic.SharedBacklog(s.max_backlog)
        """Bytes of client messages waiting for or in flight to the backend, all connections together."""
        Gauge("freescore_gateway_backlog_bytes", "Bytes of client messages waiting for or in flight to the backend",
              registry=registry).set_function(lambda: self.backlog.total)
        self.local: dict[str, GatewayProtocol] = {}
        self.draining: set[str] = set()
        """Ended connections whose queued PUTs still go out before their DELETE hook."""
        self.pending_hooks = 0
        self._push_indexes = push_listeners(ctx.config, ctx.name)
        self._push_sites: set[Any] | None = None
        self._ws_hostname = ""
        self.router = Router(self.hub, ctx.reactor, self.local)
        self.factory = self.websocket_factory(GatewayProtocol)
        self.factory.setProtocolOptions(autoFragmentSize=s.max_frame)
        own_listeners = ctx.config.has_own_listeners(ctx.name)
        endpoint = WebSocketEndpoint(self.factory, subpaths=own_listeners)
        self.resources = {s.path: endpoint, s.push_path: PushAPI(self)}
        if own_listeners:
            self.resources[""] = endpoint  # listeners of its own: any path takes clients, as upstream

    # -- lifecycle ------------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        self.router.start()
        self.log.info("gateway: clients on {path}, push API on {push}, hooks to {api}", path=self.settings.path,
                      push=self.settings.push_path, api=self.settings.api_uri)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        self.router.stop()
        self.timers.cancel_all()
        done: Deferred[Any] = Deferred()
        deadline = self.reactor.seconds() + SHUTDOWN_WAIT

        def check() -> None:
            if (self.local or self.draining or self.pending_hooks) and self.reactor.seconds() < deadline:
                self.reactor.callLater(0.05, check)
                return
            if self.draining or self.pending_hooks:
                self.log.warn("gateway: stopping with the hooks of {n} connections unsent",
                              n=len(self.draining) + self.pending_hooks)
            self.backend.stop().addBoth(lambda _: done.callback(None))

        # Let the 1001 closes start (the composition root sends them) before waiting.
        self.reactor.callLater(0, check)
        return done

    # -- where things are ----------------------------------------------------------------
    def _listeners(self) -> list[Any] | None:
        return getattr(self.parent, "listeners", None)

    def ws_hostname(self) -> str:
        """`ws_hostname`, or the first push listener's address + push_path."""
        if self.settings.ws_hostname:
            return self.settings.ws_hostname
        if self._ws_hostname:
            return self._ws_hostname
        listeners = self._listeners()
        lst = listeners[self._push_indexes[0]] if listeners and self._push_indexes else None
        port = getattr(lst, "port", None)
        host = getattr(port.getHost(), "host", None) if port is not None else None
        if lst is None or port is None or host is None:
            return "http://localhost" + self.settings.push_path
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if lst.tls is not None else "http"
        self._ws_hostname = f"{scheme}://{host}:{port.getHost().port}{self.settings.push_path}"
        return self._ws_hostname

    def serves_push(self, request: Any) -> bool:
        """Is this request on a listener named in push_listen?"""
        listeners = self._listeners()
        if not listeners:
            return True
        if self._push_sites is None:
            self._push_sites = {listeners[i].site for i in self._push_indexes}
        return getattr(request, "site", None) in self._push_sites

    def push_allowed(self, address: Any) -> bool:
        if not self.push_networks:
            return True
        host = getattr(address, "host", None)
        if host is None:
            return True  # a UNIX socket: local by construction
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.push_networks)

    # -- registry ----------------------------------------------------------------------
    def register(self, proto: GatewayProtocol) -> None:
        self.local[proto.conn_id] = proto
        self.hub.join(SPACE, proto.conn_id, {"node": self.hub.node}).addErrback(
            lambda f: self.log.warn("gateway: presence join failed: {why}", why=f.getErrorMessage()))

    def unregister(self, proto: GatewayProtocol) -> None:
        self.draining.add(proto.conn_id)  # until its close hook starts
        if self.local.pop(proto.conn_id, None) is not None:
            self.hub.leave(SPACE, proto.conn_id).addErrback(
                lambda f: self.log.warn("gateway: presence leave failed: {why}", why=f.getErrorMessage()))

    def close_hook(self, conn_id: str, credential: str, ws: str) -> None:
        self.draining.discard(conn_id)
        self.pending_hooks += 1

        def done(result: HookResult) -> None:
            self.pending_hooks -= 1
            if result.status is None or not 200 <= result.status < 300:
                self.log.warn("gateway: close hook for {id} gave up: {what}", id=conn_id, what=result.describe())
                self.factory.metrics.errors.inc()

        self.backend.close(conn_id, credential, ws, self.settings.close_retry_delays).addCallback(done)

    # -- the apply loop ----------------------------------------------------------------
    def apply(self, effects: Iterable[Effect]) -> None:
        """Perform what `logic` decided for connections held here, in order."""
        apply_effects(self, effects)

    def peer(self, cid: ConnId) -> GatewayProtocol | None:
        return self.local.get(cid)

    def fired(self, key: Any, payload: Any) -> None:
        proto = self.local.get(key)
        if proto is not None:
            proto.expire()

    # -- push routing ------------------------------------------------------------------
    def route(self, conn_id: str, command: wire.PushCommand) -> Deferred[Reply]:
        return self.router.route(conn_id, command)


def make_service(ctx: ServiceContext) -> GatewayService:
    """The composition root's one call into this package."""
    return GatewayService(ctx)

"""The gateway service: the client endpoint, the push API, the hooks and the routing.

Connections are registered in the hub's presence (space `gateway`, info
`{"node": ...}`). A push for a connection held here is delivered directly;
one held by another node is sent as a command on that node's channel
`gateway.node.<node>` and answered on `gateway.reply.<node>`, so with the
Redis hub any node can take any push, and 410 means no node holds the id.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
from typing import Any

from prometheus_client import Counter
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from freescore.gateway import logic, wire
from freescore.gateway.adapter import GatewayProtocol, PushAPI
from freescore.gateway.hooks import Backend, HookResult
from freescore.gateway.settings import Settings, push_listeners
from freescore.hub import HubMessage
from freescore.service import ProtocolService, ServiceContext
from freescore.websocket import FreescoreServerFactory, WebSocketEndpoint, WebSocketLimits

SPACE = "gateway"
NODE_CALL_TIMEOUT = 5.0
SHUTDOWN_WAIT = 10.0
Reply = tuple[int, bytes]


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


class GatewayService(ProtocolService):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        assert isinstance(s, Settings)
        self.settings = s
        self.reactor = ctx.reactor
        self.hub = ctx.hub
        self.log = LevelLog(s.log_level)
        self.trusted_proxies = s.networks("trusted_proxies")
        self.push_networks = s.networks("push_allow")
        self.timers = logic.Timers(s.idle_timeout, s.max_duration)
        registry = ctx.metrics.registry
        self.backend = Backend(ctx.reactor, s.api_uri, s.hook_timeout / 1000.0, s.hook_pool_size, registry)
        self.refused = Counter("freescore_gateway_refused", "Handshakes refused by outcome", ["code"],
                               registry=registry)
        self.local: dict[str, GatewayProtocol] = {}
        self.pending_hooks = 0
        self._push_indexes = push_listeners(ctx.config, ctx.name)
        self._push_sites: set[Any] | None = None
        self._ws_hostname = ""
        self._calls: dict[int, Deferred[Reply]] = {}
        self._rids = itertools.count(1)
        self._subs: list[Any] = []
        limits = WebSocketLimits(
            max_frame=s.max_frame, max_message=s.max_message, open_timeout=s.hook_timeout / 1000.0 + 5.0,
            close_timeout=5.0, max_connections=s.max_connections, keepalive=s.keepalive,
        )
        factory = FreescoreServerFactory(
            GatewayProtocol, service=ctx.name, limits=limits, metrics=ctx.metrics, connections=ctx.connections,
            reactor=ctx.reactor,
        )
        factory.gateway = self  # type: ignore[attr-defined]
        factory.setProtocolOptions(autoFragmentSize=s.max_frame)
        self.factory = factory
        endpoint = WebSocketEndpoint(factory)
        self.resources = {s.path: endpoint, s.push_path: PushAPI(self)}
        if not shares_listeners(ctx):
            self.resources[""] = endpoint  # listeners of its own: any path takes clients, as upstream

    # -- lifecycle ------------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        node = self.hub.node
        self._subs = [
            self.hub.subscribe(f"gateway.node.{node}", self._on_command),
            self.hub.subscribe(f"gateway.reply.{node}", self._on_reply),
        ]
        self.log.info("gateway: clients on {path}, push API on {push}, hooks to {api}", path=self.settings.path,
                      push=self.settings.push_path, api=self.settings.api_uri)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        for sub in self._subs:
            sub.cancel()
        self._subs = []
        done: Deferred[Any] = Deferred()
        deadline = self.reactor.seconds() + SHUTDOWN_WAIT

        def check() -> None:
            if (self.local or self.pending_hooks) and self.reactor.seconds() < deadline:
                self.reactor.callLater(0.05, check)
                return
            if self.pending_hooks:
                self.log.warn("gateway: stopping with {n} close hooks unsent", n=self.pending_hooks)
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
        if self.local.pop(proto.conn_id, None) is not None:
            self.hub.leave(SPACE, proto.conn_id).addErrback(
                lambda f: self.log.warn("gateway: presence leave failed: {why}", why=f.getErrorMessage()))

    def close_hook(self, conn_id: str, credential: str, ws: str) -> None:
        self.pending_hooks += 1

        def done(result: HookResult) -> None:
            self.pending_hooks -= 1
            if result.status is None or not 200 <= result.status < 300:
                self.log.warn("gateway: close hook for {id} gave up: {what}", id=conn_id, what=result.describe())
                self.factory.metrics.errors.inc()

        self.backend.close(conn_id, credential, ws, self.settings.close_retry_delays).addCallback(done)

    # -- push routing ------------------------------------------------------------------
    def route(self, conn_id: str, command: wire.PushCommand) -> Deferred[Reply]:
        proto = self.local.get(conn_id)
        if proto is not None:
            return succeed(execute(proto, command))
        d = self.hub.member(SPACE, conn_id)  # one presence entry, not the whole space per push
        d.addCallback(self._route_remote, conn_id, command)
        return d

    def _route_remote(self, info: Any, conn_id: str, command: wire.PushCommand) -> Any:
        proto = self.local.get(conn_id)
        if proto is not None:
            return execute(proto, command)
        node = info.get("node") if isinstance(info, dict) else None
        if not node or node == self.hub.node:
            if not self.hub.is_up():  # only this node's view: another node may hold it
                return (503, wire.encode({"code": "HUB_DOWN",
                                          "message": "the hub is unreachable, so the node holding it is unknown"}))
            return (410, b"")
        rid = next(self._rids)
        d: Deferred[Reply] = Deferred()
        self._calls[rid] = d

        def expire() -> None:
            call = self._calls.pop(rid, None)
            if call is not None:
                call.callback((504, wire.encode({"code": "NODE_TIMEOUT", "message": f"node {node} did not answer"})))

        self.reactor.callLater(NODE_CALL_TIMEOUT, expire)
        payload = {"id": conn_id, "rid": rid, "reply": f"gateway.reply.{self.hub.node}", **encode_command(command)}
        self.hub.publish(f"gateway.node.{node}", payload)
        return d

    def _on_command(self, message: HubMessage) -> None:
        p = message.payload
        proto = self.local.get(p.get("id", ""))
        status, body = execute(proto, decode_command(p)) if proto is not None else (410, b"")
        self.hub.publish(p["reply"], {"rid": p["rid"], "status": status, "body": body.decode("utf-8")})

    def _on_reply(self, message: HubMessage) -> None:
        p = message.payload
        d = self._calls.pop(p.get("rid"), None)
        if d is not None:
            d.callback((int(p["status"]), str(p.get("body", "")).encode("utf-8")))


def shares_listeners(ctx: ServiceContext) -> bool:
    """Does another service use one of the gateway's listeners?"""
    mine = set(ctx.config.listeners_for(ctx.name))
    return any(mine & set(ctx.config.listeners_for(name)) for name in ctx.config.services if name != ctx.name)


def execute(proto: GatewayProtocol, command: wire.PushCommand) -> Reply:
    """Carry out a push command on a connection held by this node."""
    if not proto.live():
        return (410, b"")
    if isinstance(command, wire.PushSend):
        if proto.outbound_buffered() > proto.gateway.settings.max_outbound_buffer:
            return (429, b"")
        proto.push(command.payload, command.binary)
        return (200, wire.OK_BODY)
    if isinstance(command, wire.PushInfo):
        return (200, proto.info())
    proto.close_with(logic.CLOSE_NORMAL)
    return (204, b"")


def encode_command(command: wire.PushCommand) -> dict[str, Any]:
    """A JSON-safe form of a command, for the hub."""
    if isinstance(command, wire.PushSend):
        if command.binary:
            return {"op": "send", "binary": True, "data": base64.b64encode(command.payload).decode("ascii")}
        return {"op": "send", "binary": False, "data": command.payload.decode("utf-8")}
    if isinstance(command, wire.PushInfo):
        return {"op": "info"}
    return {"op": "close"}


def decode_command(p: dict[str, Any]) -> wire.PushCommand:
    op = p.get("op")
    if op == "send":
        if p.get("binary"):
            return wire.PushSend(base64.b64decode(p["data"]), True)
        return wire.PushSend(str(p["data"]).encode("utf-8"), False)
    if op == "info":
        return wire.PushInfo()
    return wire.PushClose()

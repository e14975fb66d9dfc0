"""The clicker adapter: Autobahn protocol and Twisted service, thin over wire and logic.

Fan-out goes through the hub on one channel, `clicker`, carrying
`["up", id, node]`, `["down", id, node]` and `["score", id, timestamp, score]`;
each node subscribes once and frames each relay once per dialect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionRequest
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger
from twisted.python.failure import Failure

from freescore.clicker import wire
from freescore.clicker.logic import Clicker, IdsExhausted, Registration, Session
from freescore.clicker.store import RegistryStore, load_registry
from freescore.config import ConfigError
from freescore.hub import HubMessage
from freescore.service import ProtocolService, ServiceContext
from freescore.websocket import FreescoreServerFactory, FreescoreServerProtocol, WebSocketEndpoint, WebSocketLimits

log = Logger(namespace="freescore.clicker")

CHANNEL = "clicker"
PRESENCE = "clicker"
SECRET_KEY = "clicker:secret:"
"""Hub store keys (several nodes): secret -> id, and id -> secret (the claim)."""
ID_KEY = "clicker:id:"
MAX_HELD_FRAMES = 64
"""Frames buffered behind a REGISTER whose write is in flight before reading pauses."""


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 6 and value.isascii() and value.isdigit()


def _secret_label(secret: str) -> str:
    """Never log a whole secret (spec §8)."""
    return secret[:8] + "..."


class ClickerProtocol(FreescoreServerProtocol):
    factory: ClickerFactory
    session: Session
    _held: list[bytes] | None = None
    _paused = False
    _gone = False
    _told_role = False

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """Autobahn's sendData minus its debug log, whose arguments are coloured eagerly.

        That log line cost about a third of the CPU per SCORE (two writes: the
        SCORED and the relay); the queued and chopped paths are left to Autobahn.
        """
        if chopsize or sync or self.send_queue:
            super().sendData(data, sync, chopsize)
            return
        self.transport.write(data)
        if self.state == WebSocketProtocol.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        elif self.state in (WebSocketProtocol.STATE_CONNECTING, WebSocketProtocol.STATE_PROXY_CONNECTING):
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)
        if self.logOctets:
            self.logTxOctets(data, False)

    def handshake(self, request: ConnectionRequest) -> Any:
        return None  # no subprotocol, no Host/Origin check: the devices send Host without port

    def opened(self) -> None:
        self.session = Session(key=self)

    def received(self, payload: bytes, is_binary: bool) -> None:
        if is_binary:  # devices never send binary; ignore, as the spec says
            self.factory.metrics.errors.inc()
            return
        if self._held is not None:  # a REGISTER is being written: keep frame order
            self._held.append(payload)
            if len(self._held) >= MAX_HELD_FRAMES and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pauseProducing()
            return
        self._handle(payload)

    def _handle(self, payload: bytes) -> None:
        svc = self.factory.clicker
        try:
            command = wire.parse(payload.decode("utf-8"), svc.settings.max_ids)
        except (wire.IgnoredInput, UnicodeDecodeError):
            self.factory.metrics.errors.inc()
            return
        if type(command) is wire.Score:
            outcome = svc.logic.score(self.session, command)
            self.send_text(outcome.reply)
            if outcome.relay:
                svc.publish(["score", self.session.device_id, command.timestamp, command.score])
        elif type(command) is wire.Register:
            self._register(command)
        else:
            lines = svc.logic.listen(self.session, command)  # type: ignore[arg-type]
            if lines is None:
                self.factory.metrics.errors.inc()
                return
            for line in lines:
                self.send_text(line)

    def _register(self, command: wire.Register) -> None:
        svc = self.factory.clicker
        if svc.shared and svc.logic.registry.lookup(command.secret) is None:
            self._register_shared(command)
            return
        try:
            registration = svc.logic.register(self.session, command)
        except IdsExhausted:
            log.error("clicker: every id is allocated; REGISTER from {peer} gets no reply", peer=self.peer)
            self.factory.metrics.errors.inc()
            return
        if registration is None:
            self._register_ignored()
            return
        if not registration.created:
            self._registered(registration)
            return
        self._held = []
        svc.store.commit().addCallbacks(
            lambda _: self._registered(registration), lambda f: self._register_failed(f, registration)
        )

    def _register_ignored(self) -> None:
        if not self._told_role:  # once per connection: a flood must not flood the log
            self._told_role = True
            log.info("clicker: {peer} sent REGISTER with a role already set; ignored", peer=self.peer)
        self.factory.metrics.errors.inc()

    def _register_shared(self, command: wire.Register) -> None:
        """A secret this node does not know, with several nodes: ask the hub, or claim a new id there."""
        svc = self.factory.clicker
        if not svc.logic.claim_sender(self.session):
            self._register_ignored()
            return
        self._held = []

        def assigned(registration: Registration) -> Any:
            svc.logic.assign(self.session, registration)
            if not registration.created:
                return registration
            return svc.store.commit().addCallback(lambda _: registration)

        def failed(failure: Failure) -> None:
            if failure.check(IdsExhausted):
                log.error("clicker: every id is allocated; REGISTER from {peer} gets no reply", peer=self.peer)
                self.factory.metrics.errors.inc()
                self._held = None
                return
            self._register_failed(failure, None)

        svc.shared_registration(command.secret).addCallback(assigned).addCallbacks(self._registered, failed)

    def _registered(self, registration: Registration) -> None:
        held, self._held = self._held, None
        if self._gone:
            return
        svc = self.factory.clicker
        self.send_text(wire.format_registered(registration.device_id, registration.secret))
        log.info(
            "clicker: {peer} registered as {id} (secret {secret}, {how})", peer=self.peer,
            id=registration.device_id, secret=_secret_label(registration.secret),
            how="new" if registration.created else "known",
        )
        if svc.logic.sender_live(self.session):
            svc.device_up(registration.device_id)
        for payload in held or ():
            if self._gone:
                break
            self._handle(payload)
        if self._paused and not self._gone and self.transport is not None:
            self._paused = False
            self.transport.resumeProducing()

    def _register_failed(self, failure: Failure, registration: Registration | None) -> None:
        log.failure(
            "clicker: could not save the registry; no REGISTERED for {id}", failure,
            id=registration.device_id if registration is not None else self.session.device_id,
        )
        self.factory.metrics.errors.inc()
        self._held = None
        if not self._gone:
            self.dropConnection(abort=True)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self._gone = True
        svc = self.factory.clicker
        session = getattr(self, "session", None)
        if session is not None and svc.logic.closed(session):
            svc.device_down(session.device_id)  # type: ignore[arg-type]


class ClickerEndpoint(WebSocketEndpoint):
    """Drops an `Origin` that is no URL (the devices send `Origin: Espruino`).

    Autobahn fails the handshake on an Origin without a host part, whatever
    `allowedOrigins` says; without the header it treats the peer as the
    non-browser client it is.
    """

    def render(self, request: Any) -> Any:
        origin = request.getHeader("origin")
        if origin is not None and origin.strip().lower() != "null" and not _has_host(origin.strip()):
            request.requestHeaders.removeHeader("origin")
        return super().render(request)


def _has_host(origin: str) -> bool:
    try:
        return bool(urlsplit(origin).hostname)
    except ValueError:
        return False


class ClickerFactory(FreescoreServerFactory):
    clicker: ClickerService


class ClickerService(ProtocolService):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        from freescore.clicker import Settings

        settings = ctx.settings
        assert isinstance(settings, Settings)
        self.settings = settings
        self.hub = ctx.hub
        self.node = ctx.hub.node
        self.shared = ctx.config.hub.backend != "memory"
        """Several nodes: secrets and ids are also kept in the hub's store, so any node knows them."""
        try:
            registry = load_registry(settings.state)
        except (OSError, ValueError) as e:
            raise ConfigError(ctx.config.file, f"{ctx.name}.state", f"cannot read the registry: {e}") from None
        self.logic = Clicker(registry, node=self.node)
        self.store = RegistryStore(settings.state, registry, ctx.reactor)
        limits = WebSocketLimits(
            max_frame=65536, max_message=65536, close_timeout=settings.close_timeout,
            keepalive=settings.ping_interval, allowed_origins=("*",),
        )
        self.factory = ClickerFactory(
            ClickerProtocol, service=ctx.name, limits=limits, metrics=ctx.metrics,
            connections=ctx.connections, reactor=ctx.reactor,
        )
        self.factory.clicker = self
        self.resources = {settings.path: ClickerEndpoint(self.factory)}
        self._subscription: Any = None

    def startService(self) -> None:
        super().startService()
        self._subscription = self.hub.subscribe(CHANNEL, self._on_hub)
        self.hub.members(PRESENCE).addCallbacks(self._seed_presence, self._hub_failed)
        if self.shared:
            self._share_registry().addErrback(self._hub_failed)
        log.info(
            "clicker: {count} registered device(s) in {path}", count=len(self.logic.registry), path=str(self.store.path)
        )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        return self.store.idle()

    # -- hub ------------------------------------------------------------------
    def publish(self, payload: list[str]) -> None:
        self.hub.publish(CHANNEL, payload).addErrback(self._hub_failed)

    def device_up(self, device_id: str) -> None:
        self.hub.join(PRESENCE, device_id, {"node": self.node}).addErrback(self._hub_failed)
        self.publish(["up", device_id, self.node])

    def device_down(self, device_id: str) -> None:
        self.hub.leave(PRESENCE, device_id).addErrback(self._hub_failed)
        self.publish(["down", device_id, self.node])

    @inlineCallbacks
    def shared_registration(self, secret: str) -> Any:
        """The hub's id for `secret`, or a fresh secret with an id claimed in the hub; a Registration.

        An id is claimed by checking that no node holds it, setting it, and
        reading it back; two nodes would both win only by drawing the same
        random id (1 in 1,000,000) within one Redis round trip of each other.
        """
        registry = self.logic.registry
        if secret:
            known = yield self.hub.get(SECRET_KEY + secret)
            if _is_id(known):
                return registry.adopt(secret, known)
        for _ in range(64):
            device_id = registry.reserve_id()
            if (yield self.hub.get(ID_KEY + device_id)) is not None:
                continue  # another node's; now reserved here too
            fresh = registry.fresh_secret()
            yield self.hub.set(ID_KEY + device_id, fresh)
            if (yield self.hub.get(ID_KEY + device_id)) != fresh:
                continue  # lost a concurrent claim
            yield self.hub.set(SECRET_KEY + fresh, device_id)
            return registry.adopt(fresh, device_id)
        raise IdsExhausted("no free id found in the hub")

    @inlineCallbacks
    def _share_registry(self) -> Any:
        """Put this node's registry (e.g. from before it joined others) into the hub's store."""
        conflicts = 0
        for secret, device_id in list(self.logic.registry.secrets.items()):
            owner = yield self.hub.get(ID_KEY + device_id)
            if owner is None:
                yield self.hub.set(ID_KEY + device_id, secret)
            elif owner != secret:
                conflicts += 1
                continue
            if (yield self.hub.get(SECRET_KEY + secret)) is None:
                yield self.hub.set(SECRET_KEY + secret, device_id)
        if conflicts:
            log.warn("clicker: {count} id(s) of this node's registry belong to another secret in the hub; "
                     "those devices are known on this node only", count=conflicts)

    def _seed_presence(self, members: dict[str, Any]) -> None:
        for device_id, info in members.items():
            node = info.get("node") if isinstance(info, dict) else None
            if isinstance(node, str) and node != self.node:
                self.logic.device_up(device_id, node)

    def _hub_failed(self, failure: Failure) -> None:
        log.failure("clicker: hub operation failed", failure)

    def _on_hub(self, message: HubMessage) -> None:
        payload = message.payload
        kind = payload[0]
        device_id = payload[1]
        if kind == "score":
            draft1, draft2 = self.logic.receivers(device_id)
            timestamp, score = payload[2], payload[3]
            if draft2:
                self.factory.broadcast(draft2, wire.format_relay(wire.DRAFT_2, device_id, timestamp, score).encode())
            if draft1:
                self.factory.broadcast(draft1, wire.format_relay(wire.DRAFT_1, device_id, timestamp, score).encode())
        elif kind == "up":
            if self.logic.device_up(device_id, payload[2]):
                self._to_watchers(device_id, wire.format_connect(device_id))
        elif kind == "down":
            if self.logic.device_down(device_id, payload[2]):
                self._to_watchers(device_id, wire.format_disconnect(device_id))

    def _to_watchers(self, device_id: str, line: str) -> None:
        draft1, draft2 = self.logic.receivers(device_id)
        if draft1 or draft2:
            self.factory.broadcast([*draft1, *draft2], line.encode())

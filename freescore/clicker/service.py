"""The clicker adapter: Autobahn protocol and Twisted service, thin over wire and logic.

Fan-out goes through the hub on one channel, `clicker`, carrying
`["up", id, node]`, `["down", id, node]` and
`["scores", [[id, timestamp, score], ...]]` (the relays of one reactor turn);
each node subscribes once and frames each relay once per dialect.
"""

from __future__ import annotations

from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionRequest
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from freescore.clicker import wire
from freescore.clicker.logic import Clicker, IdsExhausted, Refused, RegisterBudget, Registration, Session
from freescore.clicker.store import HubRegistry, RegistryStore, load_registry
from freescore.config import ConfigError
from freescore.hub import HubMessage
from freescore.service import ProtocolService, ServiceContext
from freescore.websocket import FreescoreServerFactory, FreescoreServerProtocol, WebSocketEndpoint, WebSocketLimits

log = Logger(namespace="freescore.clicker")

CHANNEL = "clicker"
PRESENCE = "clicker"
MAX_HELD_FRAMES = 64
"""Frames buffered behind a REGISTER whose write is in flight before reading pauses."""


def text_frame(line: str) -> bytes:
    """One unmasked, unfragmented text frame: what Autobahn's sendMessage builds for a server.

    Framing the short clicker lines here skips Autobahn's per-call checks on
    the hot path (every SCORE is one SCORED and one relay); frames are
    byte-identical (no extensions are ever negotiated on this endpoint).
    """
    data = line.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data


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
    _told_refused = False

    def send_line(self, line: str) -> None:
        if self.state == WebSocketProtocol.STATE_OPEN:
            self.factory.clicker.count_out(1)
            self.sendData(text_frame(line))

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
            self.send_line(outcome.reply)
            if outcome.relay:
                svc.publish_score(self.session.device_id, command.timestamp, command.score)  # type: ignore[arg-type]
        elif type(command) is wire.Register:
            self._register(command)
        else:
            lines = svc.logic.listen(self.session, command)  # type: ignore[arg-type]
            if lines is None:
                self.factory.metrics.errors.inc()
                return
            for line in lines:
                self.send_line(line)

    @property
    def peer_address(self) -> str:
        """The peer's IP address (what the registration budget is kept by)."""
        peer = self.transport.getPeer() if self.transport is not None else None
        return str(getattr(peer, "host", peer))

    def _register(self, command: wire.Register) -> None:
        svc = self.factory.clicker
        if svc.hub_registry is not None:
            if not svc.logic.claim_sender(self.session):
                self._ignore_register()
                return
            self._held = []
            address = self.peer_address
            svc.hub_registry.register(
                command.secret, admit=lambda: svc.logic.admit_new(None, address, svc.ctx.reactor.seconds())
            ).addCallbacks(self._hub_registered, lambda f: self._register_failed(f, None))
            return
        try:
            registration = svc.logic.register(self.session, command, self.peer_address, svc.ctx.reactor.seconds())
        except IdsExhausted:
            log.error("clicker: every id is allocated; REGISTER from {peer} gets no reply", peer=self.peer)
            self.factory.metrics.errors.inc()
            return
        if registration is None:
            self._ignore_register()
            return
        if isinstance(registration, Refused):
            self._refuse_register(registration)
            return
        if not registration.created:
            self._registered(registration)
            return
        self._held = []
        svc.store.commit().addCallbacks(
            lambda _: self._registered(registration), lambda f: self._register_failed(f, registration.device_id)
        )

    def _ignore_register(self) -> None:
        if not self._told_role:  # once per connection: a flood must not flood the log
            self._told_role = True
            log.info("clicker: {peer} sent REGISTER with a role already set; ignored", peer=self.peer)
        self.factory.metrics.errors.inc()

    def _refuse_register(self, why: Refused) -> None:
        """No reply (the spec forbids error lines); logged once per connection so a loop cannot flood the log."""
        self.factory.metrics.errors.inc()
        if not self._told_refused:
            self._told_refused = True
            level = log.error if why is Refused.FULL else log.warn
            level("clicker: REGISTER for a new id from {peer} ignored: {why}", peer=self.peer, why=why.value)

    def _hub_registered(self, registration: Registration | Refused) -> None:
        if isinstance(registration, Refused):
            self.factory.clicker.logic.unclaim(self.session)
            self._refuse_register(registration)
            self._release_held()
            return
        self.factory.clicker.logic.assign(self.session, registration)
        self._registered(registration)

    def _registered(self, registration: Registration) -> None:
        if self._gone:
            self._held = None
            return
        svc = self.factory.clicker
        self.send_line(wire.format_registered(registration.device_id, registration.secret))
        log.info(
            "clicker: {peer} registered as {id} (secret {secret}, {how})", peer=self.peer,
            id=registration.device_id, secret=_secret_label(registration.secret),
            how="new" if registration.created else "known",
        )
        if svc.logic.sender_live(self.session):
            svc.device_up(registration.device_id)
        self._release_held()

    def _release_held(self) -> None:
        """Handle the frames that arrived while the REGISTER was pending, in order."""
        held, self._held = self._held, None
        for payload in held or ():
            if self._gone:
                break
            self._handle(payload)
        if self._paused and not self._gone and self.transport is not None:
            self._paused = False
            self.transport.resumeProducing()

    def _register_failed(self, failure: Failure, device_id: str | None) -> None:
        self.factory.metrics.errors.inc()
        if failure.check(IdsExhausted):  # no reply, as the spec says; later SCOREs are still answered
            log.error("clicker: {why}; REGISTER from {peer} gets no reply", why=str(failure.value), peer=self.peer)
            self._release_held()
            return
        log.failure("clicker: could not save the registry; no REGISTERED for {id}", failure, id=device_id or "?")
        self._held = None
        if not self._gone:
            self.dropConnection(abort=True)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self._gone = True
        svc = self.factory.clicker
        session = getattr(self, "session", None)
        if session is not None and svc.logic.closed(session):
            svc.device_down(session.device_id)  # type: ignore[arg-type]
        if session is not None:
            session.key = None  # the session pointed back here: let refcounting free both


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
        try:
            registry = load_registry(settings.state)
        except (OSError, ValueError) as e:
            raise ConfigError(ctx.config.file, f"{ctx.name}.state", f"cannot read the registry: {e}") from None
        budget = None
        if settings.register_rate > 0:
            budget = RegisterBudget(settings.register_rate, settings.register_burst, settings.register_exempt)
        self.logic = Clicker(registry, node=self.node, max_devices=settings.max_devices, budget=budget)
        self.store = RegistryStore(settings.state, registry, ctx.reactor)
        use_hub = settings.registry == "hub" or (settings.registry == "auto" and ctx.config.hub.backend == "redis")
        self.hub_registry = HubRegistry(ctx.hub, local=registry) if use_hub else None
        limits = WebSocketLimits(
            max_frame=65536, max_message=65536, close_timeout=settings.close_timeout,
            keepalive=settings.ping_interval, allowed_origins=("*",),
        )
        self.factory = ClickerFactory(
            ClickerProtocol, service=ctx.name, limits=limits, metrics=ctx.metrics,
            connections=ctx.connections, reactor=ctx.reactor,
        )
        self.factory.clicker = self
        self.resources = {settings.path: WebSocketEndpoint(self.factory)}
        self._subscription: Any = None
        self._scores: list[list[str]] = []
        self._out = 0
        self._flush_call: Any = None
        self._presence_loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._subscription = self.hub.subscribe(CHANNEL, self._on_hub)
        ready = getattr(self._subscription, "ready", None)
        if ready is not None:
            ready.addCallback(lambda _: log.info("clicker: subscribed to hub channel {channel}", channel=CHANNEL))
        self.hub.members(PRESENCE).addCallbacks(self._seed_presence, self._hub_failed)
        if self.settings.presence_check > 0:
            self._presence_loop = LoopingCall(self._check_presence)
            self._presence_loop.clock = self.ctx.reactor
            self._presence_loop.start(self.settings.presence_check, now=False).addErrback(self._hub_failed)
        if self.hub_registry is not None:
            log.info("clicker: device registry in the hub's shared store")
        else:
            log.info(
                "clicker: {count} registered device(s) in {path}", count=len(self.logic.registry),
                path=str(self.store.path),
            )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._flush_scores()
        if self._presence_loop is not None and self._presence_loop.running:
            self._presence_loop.stop()
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        return self.store.idle()

    # -- hub ------------------------------------------------------------------
    def publish(self, payload: list[Any]) -> None:
        self.hub.publish(CHANNEL, payload).addErrback(self._hub_failed)

    def publish_score(self, device_id: str, timestamp: str, score: str) -> None:
        """Queue a relay; the scores of one reactor turn go out as one hub message, in order."""
        self._scores.append([device_id, timestamp, score])
        if self._flush_call is None:
            self._flush_call = self.ctx.reactor.callLater(0, self._flush_scores)

    def _flush_scores(self) -> None:
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self._scores:
            batch, self._scores = self._scores, []
            self.publish(["scores", batch])
        if self._out:
            self.ctx.metrics.messages_out.inc(self._out)
            self._out = 0

    def device_up(self, device_id: str) -> None:
        self._flush_scores()  # keep relays and presence in the order they happened
        # Join before publishing: a node that saw "up" then finds the member listed.
        self.hub.join(PRESENCE, f"{device_id}@{self.node}", {"id": device_id, "node": self.node}).addErrback(
            self._hub_failed
        )
        # Record this node's holding now, not when the hub echoes it: with Redis the
        # echo of our own publish and other nodes' messages come by different
        # connections, and another node's "down" must not be applied before our "up".
        if self.logic.device_up(device_id, self.node):
            self._to_watchers(device_id, wire.format_connect(device_id))
        self.publish(["up", device_id, self.node])

    def device_down(self, device_id: str) -> None:
        self._flush_scores()
        self.hub.leave(PRESENCE, f"{device_id}@{self.node}").addErrback(self._hub_failed)
        self.publish(["down", device_id, self.node])

    @staticmethod
    def _holdings(members: dict[str, Any]) -> set[tuple[str, str]]:
        held = set()
        for info in members.values():
            if isinstance(info, dict) and isinstance(info.get("id"), str) and isinstance(info.get("node"), str):
                held.add((info["id"], info["node"]))
        return held

    def _seed_presence(self, members: dict[str, Any]) -> None:
        for device_id, node in self._holdings(members):
            if node != self.node and self.logic.device_up(device_id, node):
                self._to_watchers(device_id, wire.format_connect(device_id))

    def _check_presence(self) -> None:
        """Catch devices of a node that died without saying "down" (its presence expired in the hub)."""
        believed = self.logic.remote_holdings()
        if not believed:
            return

        def listed(members: dict[str, Any]) -> None:
            for device_id in self.logic.reconcile(believed, self._holdings(members)):
                self._to_watchers(device_id, wire.format_disconnect(device_id))

        self.hub.members(PRESENCE).addCallbacks(listed, self._hub_failed)

    def _hub_failed(self, failure: Failure) -> None:
        log.failure("clicker: hub operation failed", failure)

    def _on_hub(self, message: HubMessage) -> None:
        payload = message.payload
        kind = payload[0]
        if kind == "scores":
            self._relay(payload[1])
        elif kind == "up":
            if payload[2] == self.node:
                return  # applied in device_up
            if self.logic.device_up(payload[1], payload[2]):
                self._to_watchers(payload[1], wire.format_connect(payload[1]))
        elif kind == "down":
            if self.logic.device_down(payload[1], payload[2]):
                self._to_watchers(payload[1], wire.format_disconnect(payload[1]))

    def _relay(self, scores: list[list[str]]) -> None:
        """Relay a batch of scores; each receiver gets its lines in order, in one write."""
        frames: dict[Any, list[bytes]] = {}
        for device_id, timestamp, score in scores:
            draft1, draft2 = self.logic.receivers(device_id)
            for receivers, dialect in ((draft2, wire.DRAFT_2), (draft1, wire.DRAFT_1)):
                if receivers:
                    frame = text_frame(wire.format_relay(dialect, device_id, timestamp, score))
                    for proto in receivers:
                        queued = frames.get(proto)
                        if queued is None:
                            frames[proto] = [frame]
                        else:
                            queued.append(frame)
        sent = 0
        for proto, queued in frames.items():
            if proto.state == WebSocketProtocol.STATE_OPEN:
                sent += len(queued)
                proto.sendData(queued[0] if len(queued) == 1 else b"".join(queued))
        self.count_out(sent)

    def _to_watchers(self, device_id: str, line: str) -> None:
        draft1, draft2 = self.logic.receivers(device_id)
        if draft1 or draft2:
            self._send_all([*draft1, *draft2], line)

    def _send_all(self, receivers: Any, line: str) -> None:
        """Frame once, write the same bytes to every open receiver."""
        frame = text_frame(line)
        sent = 0
        for proto in receivers:
            if proto.state == WebSocketProtocol.STATE_OPEN:
                sent += 1
                proto.sendData(frame)
        self.count_out(sent)

    def count_out(self, n: int) -> None:
        """Count sent lines, added to the metric once per reactor turn (its lock costs per call)."""
        self._out += n
        if self._flush_call is None:
            self._flush_call = self.ctx.reactor.callLater(0, self._flush_scores)

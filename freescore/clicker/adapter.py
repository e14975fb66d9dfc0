"""The clicker's Autobahn protocol and the one loop that applies what logic decides.

Thin: the rules are in `logic`, which sees connections only by opaque id;
`ClickerEffects.apply` performs its effects (replies, relays to watcher
groups, hub messages), and `service` wires the hub.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from autobahn.websocket.types import ConnectionRequest
from twisted.logger import Logger
from twisted.python.failure import Failure

from freescore.broadcast import Broadcaster, text_frame
from freescore.clicker import wire
from freescore.clicker.logic import Clicker, IdsExhausted, Refused, Registration
from freescore.effects import Broadcast, Close, Connections, ConnId, Effect, Publish, Send
from freescore.websocket import FreescoreServerProtocol

if TYPE_CHECKING:
    from freescore.clicker.service import ClickerService

log = Logger(namespace="freescore.clicker")

MAX_HELD_FRAMES = 64
"""Frames buffered behind a REGISTER whose write is in flight before reading pauses."""


def _secret_label(secret: str) -> str:
    """Never log a whole secret (spec §8)."""
    return secret[:8] + "..."


class ClickerEffects:
    """The one loop that performs the logic's effects: clicker has no timers and closes only by dropping.

    `apply_effects` with a `PeerEffects` handler would do the same with two more
    calls per effect; this loop runs for every SCORE, so it is one type switch.
    """

    def __init__(
        self, logic: Clicker, conns: Connections[ClickerProtocol], broadcaster: Broadcaster,
        publish: Callable[[list[Any]], None],
    ) -> None:
        self.logic = logic
        self.conns = conns
        self.broadcaster = broadcaster
        self.publish = publish
        """Takes each `Publish`'s message (all on logic.CHANNEL); the service batches and sends them."""

    def apply(self, effects: Iterable[Effect], batch_relays: bool = False) -> None:
        """Perform `effects` in order. Relays (Broadcasts) go out at once, or with `batch_relays`
        (the SCORE came in a read of several frames: the server is busy) in each watcher's one
        write at the end of the reactor turn, which costs a call per turn and saves a send per relay."""
        for effect in effects:
            kind = type(effect)
            if kind is Send:
                proto = self.conns.get(effect.to)  # type: ignore[union-attr]
                if proto is not None:
                    self.broadcaster.send(proto, text_frame(effect.frame))  # type: ignore[union-attr]
            elif kind is Publish:
                self.publish(effect.message)  # type: ignore[union-attr]
            elif kind is Broadcast:
                cids = self.logic.members(effect.group)  # type: ignore[union-attr]
                if cids:
                    protos = self.conns.resolve(cids)
                    to_each = self.broadcaster.queue if batch_relays else self.broadcaster.broadcast
                    to_each(protos, text_frame(effect.frame))  # type: ignore[union-attr]
            elif kind is Close:
                proto = self.conns.get(effect.to)  # type: ignore[union-attr]
                if proto is not None:
                    proto.close_with(effect.code, effect.reason)  # type: ignore[union-attr]
            else:
                raise TypeError(f"clicker logic arms no timers: {effect!r}")


class ClickerProtocol(FreescoreServerProtocol):
    """One device or receiver: frames in, wire and logic by connection id, effects out."""

    service: ClickerService
    cid: ConnId | None = None
    _held: list[bytes] | None = None
    _paused = False
    _gone = False
    _told_role = False
    _told_refused = False

    def handshake(self, request: ConnectionRequest) -> Any:
        return None  # no subprotocol, no Host/Origin check: the devices send Host without port

    def opened(self) -> None:
        svc = self.service
        self._held = None  # read per frame: the connection's own attribute, not the class's default
        self.cid = svc.conns.add(self)
        svc.logic.opened(self.cid)

    def received(self, payload: bytes, is_binary: bool) -> None:
        """One frame: held behind a pending REGISTER, or parsed and handed to logic (SCORE first: nearly all are)."""
        if is_binary:  # devices never send binary; ignore, as the spec says
            self.factory.metrics.errors.inc()
            return
        if self._held is not None:  # a REGISTER is being written: keep frame order
            self._held.append(payload)
            if len(self._held) >= MAX_HELD_FRAMES and self.transport is not None:
                self._paused = True  # again too: writes that drained resume reading (freescore.websocket)
                self.transport.pauseProducing()
            return
        svc = self.service
        try:
            command = wire.parse(payload.decode(), svc.settings.max_ids)  # UTF-8, no argument to parse
        except (wire.IgnoredInput, UnicodeDecodeError):
            self.factory.metrics.errors.inc()
            return
        if type(command) is wire.Score:
            svc.effects.apply(svc.logic.score(self.cid, command), self._batch is not None)  # type: ignore[arg-type]
        elif type(command) is wire.Register:
            self._register(command)
        else:
            effects = svc.logic.listen(self.cid, command)  # type: ignore[arg-type]
            if effects is None:
                self.factory.metrics.errors.inc()
                return
            svc.effects.apply(effects)

    @property
    def peer_address(self) -> str:
        """The peer's IP address (what the registration budget is kept by)."""
        peer = self.transport.getPeer() if self.transport is not None else None
        return str(getattr(peer, "host", peer))

    def _register(self, command: wire.Register) -> None:
        svc = self.service
        if svc.hub_registry is not None:
            if not svc.logic.claim_sender(self.cid):  # type: ignore[arg-type]
                self._ignore_register()
                return
            self._held = []
            address = self.peer_address
            svc.hub_registry.register(
                command.secret, admit=lambda: svc.logic.admit_new(None, address, svc.ctx.reactor.seconds())
            ).addCallbacks(self._hub_registered, lambda f: self._register_failed(f, None))
            return
        try:
            registration = svc.logic.register(
                self.cid, command, self.peer_address, svc.ctx.reactor.seconds()  # type: ignore[arg-type]
            )
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
        if self._gone:  # closed while the hub answered: logic has forgotten the connection
            self._held = None
            return
        if isinstance(registration, Refused):
            self.service.logic.unclaim(self.cid)  # type: ignore[arg-type]
            self._refuse_register(registration)
            self._release_held()
            return
        self.service.logic.assign(self.cid, registration)  # type: ignore[arg-type]
        self._registered(registration)

    def _registered(self, registration: Registration) -> None:
        if self._gone:
            self._held = None
            return
        svc = self.service
        svc.effects.apply(svc.logic.registered(self.cid, registration))  # type: ignore[arg-type]
        log.info(
            "clicker: {peer} registered as {id} (secret {secret}, {how})", peer=self.peer,
            id=registration.device_id, secret=_secret_label(registration.secret),
            how="new" if registration.created else "known",
        )
        self._release_held()

    def _release_held(self) -> None:
        """Handle the frames that arrived while the REGISTER was pending, in order."""
        held, self._held = self._held, None
        for payload in held or ():
            if self._gone:
                break
            self.received(payload, False)  # _held is None now: handled at once
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
        svc = self.service
        if self.cid is not None:
            svc.conns.remove(self.cid)
            svc.effects.apply(svc.logic.closed(self.cid))

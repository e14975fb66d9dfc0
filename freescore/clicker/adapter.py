"""The clicker's Autobahn protocol: bytes in, wire and logic, lines out.

Thin: the rules are in `logic`, the relays and presence in `service`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autobahn.websocket.types import ConnectionRequest
from twisted.logger import Logger
from twisted.python.failure import Failure

from freescore.broadcast import text_frame
from freescore.clicker import wire
from freescore.clicker.logic import IdsExhausted, Refused, Registration, Session
from freescore.websocket import FreescoreServerProtocol

if TYPE_CHECKING:
    from freescore.clicker.service import ClickerService

log = Logger(namespace="freescore.clicker")

MAX_HELD_FRAMES = 64
"""Frames buffered behind a REGISTER whose write is in flight before reading pauses."""


def _secret_label(secret: str) -> str:
    """Never log a whole secret (spec §8)."""
    return secret[:8] + "..."


class ClickerProtocol(FreescoreServerProtocol):
    """One device or receiver: frames in, wire and logic, one line out per reply."""

    service: ClickerService
    session: Session
    _held: list[bytes] | None = None
    _paused = False
    _gone = False
    _told_role = False
    _told_refused = False

    def send_line(self, line: str) -> None:
        self.service.broadcaster.send(self, text_frame(line))

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
        svc = self.service
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
        svc = self.service
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
            self.service.logic.unclaim(self.session)
            self._refuse_register(registration)
            self._release_held()
            return
        self.service.logic.assign(self.session, registration)
        self._registered(registration)

    def _registered(self, registration: Registration) -> None:
        if self._gone:
            self._held = None
            return
        svc = self.service
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
        svc = self.service
        session = getattr(self, "session", None)
        if session is not None and svc.logic.closed(session):
            svc.device_down(session.device_id)  # type: ignore[arg-type]
        if session is not None:
            session.key = None  # the session pointed back here: let refcounting free both

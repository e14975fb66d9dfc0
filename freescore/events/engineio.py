"""Engine.IO v4, sans-I/O: packets, polling payloads, request checks and the session machine.

The adapter does the I/O (Twisted Web for polling, Autobahn for WebSocket);
this module decides what a request means and what to send, with time passed
in, so the whole heartbeat and upgrade dance is testable without a network.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from freescore.wireformat import HttpError, encode_json

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0", "1", "2", "3", "4", "5", "6"
PACKET_TYPES = frozenset((OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP))
SEPARATOR = "\x1e"
TRANSPORTS = ("polling", "websocket")


class PacketError(ValueError):
    """An Engine.IO packet or payload that cannot be parsed; the session is closed."""


class EngineIOError(HttpError):
    """A request Engine.IO refuses: HTTP 400 (or `status`) with `{"code": N, "message": ...}`."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(status, message)
        self.code = code

    def body(self) -> bytes:
        return encode_json({"code": self.code, "message": self.message})


def transport_unknown() -> EngineIOError:
    return EngineIOError(0, "Transport unknown")


def unknown_sid() -> EngineIOError:
    return EngineIOError(1, "Session ID unknown")


def bad_handshake_method() -> EngineIOError:
    return EngineIOError(2, "Bad handshake method")


def bad_request(status: int = 400) -> EngineIOError:
    return EngineIOError(3, "Bad request", status)


def unsupported_protocol() -> EngineIOError:
    return EngineIOError(5, "Unsupported protocol version")


def new_sid() -> str:
    """A 20-character URL-safe id, as Node's engine.io hands out."""
    return secrets.token_urlsafe(15)


# -- packets ------------------------------------------------------------------
def encode_packet(kind: str, data: str = "") -> str:
    return kind + data


def decode_packet(text: str) -> tuple[str, str]:
    """Split one packet into (type digit, data); binary `b...` packets are refused."""
    if not text:
        raise PacketError("empty packet")
    kind = text[0]
    if kind == "b":
        raise PacketError("binary packets are not supported")
    if kind not in PACKET_TYPES:
        raise PacketError(f"unknown packet type {kind!r}")
    return kind, text[1:]


def encode_payload(packets: list[str]) -> str:
    """Join encoded packets for a polling response body."""
    return SEPARATOR.join(packets)


def decode_payload(body: str) -> list[tuple[str, str]]:
    """Split a polling POST body into packets; any bad packet refuses the whole body."""
    return [decode_packet(part) for part in body.split(SEPARATOR)]


def handshake_packet(
    sid: str, upgrades: list[str], ping_interval_ms: int, ping_timeout_ms: int, max_payload: int
) -> str:
    body = {
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max_payload,
    }
    return OPEN + json.dumps(body, separators=(",", ":"))


# -- requests -----------------------------------------------------------------
class SessionLookup(Protocol):
    def get(self, sid: str) -> Session | None: ...


@dataclass(frozen=True)
class RequestInfo:
    """What an Engine.IO request asks for, once its query string checked out."""

    transport: str
    sid: str | None


def check_request(method: str, query: Mapping[str, str], sessions: SessionLookup) -> RequestInfo:
    """Validate the query of a polling or WebSocket request in Node's order; raise EngineIOError."""
    transport = query.get("transport")
    if transport not in TRANSPORTS:
        raise transport_unknown()
    if query.get("EIO") != "4":
        raise unsupported_protocol()
    sid = query.get("sid")
    if sid is not None:
        session = sessions.get(sid)
        if session is None or (session.closed and not session.outbox):
            raise unknown_sid()
        # Polling only while the session polls; a WebSocket with a sid only to upgrade a polling one.
        if session.transport != "polling" or (transport == "websocket" and session.upgrading):
            raise bad_request()
        return RequestInfo(transport, sid)
    if method != "GET":
        raise bad_handshake_method()
    return RequestInfo(transport, None)


# -- the session --------------------------------------------------------------
OUTBOX_FULL = "outbox over max_unsent"
"""The close reason of a session whose outbox passed `max_unsent` (`Session.send`)."""


@dataclass(frozen=True)
class Timing:
    """Heartbeat and deadlines in seconds (the handshake advertises ms)."""

    ping_interval: float = 25.0
    ping_timeout: float = 300.0
    join_timeout: float = 45.0
    upgrade_timeout: float = 10.0
    """A probing WebSocket that has not sent `5` by then is dropped (Node's `upgradeTimeout`)."""


class Session:
    """One Engine.IO session, independent of the transport that currently carries it.

    Outgoing packets wait in `outbox` until the transport can take them
    (`take()`): a polling GET, or the WebSocket once any upgrade finished.
    With `max_unsent`, an outbox whose packets pass that many characters
    (a polling client that stopped sending GETs) is dropped and the session
    closed at once: its next GET gets `Session ID unknown`, on which
    socket.io-client and python-socketio reconnect (a close packet `1` would
    end python-socketio's session for good).
    """

    __slots__ = (
        "sid", "transport", "timing", "outbox", "closed", "close_reason", "upgrading", "upgraded",
        "get_pending", "post_pending", "awaiting_pong", "ping_sent_at", "next_ping_at", "join_deadline",
        "upgrade_deadline", "unsent", "max_unsent", "dropped",
    )

    def __init__(self, sid: str, transport: str, now: float, timing: Timing, max_unsent: int = 0) -> None:
        self.sid = sid
        self.transport = transport
        self.timing = timing
        self.outbox: list[str] = []
        self.unsent = 0
        """The outbox's encoded length (each packet and its separator), counted as packets come."""
        self.max_unsent = max_unsent
        self.dropped = 0
        """What the outbox held when it passed `max_unsent`, until the adapter reports it (`take_dropped`)."""
        self.closed = False
        self.close_reason = ""
        self.upgrading = False
        self.upgraded = False
        self.get_pending = False
        self.post_pending = False
        self.awaiting_pong = False
        self.ping_sent_at = 0.0
        self.next_ping_at = now + timing.ping_interval
        self.join_deadline: float | None = now + timing.join_timeout
        self.upgrade_deadline: float | None = None
        """While a WebSocket probes: when it must have sent `5` (`upgrade_expired`)."""

    # sending
    def send(self, packet: str) -> None:
        if not self.closed:
            self.outbox.append(packet)
            self.unsent += len(packet) + 1
            if 0 < self.max_unsent < self.unsent:
                self._overflow()

    def _overflow(self) -> None:
        """Too much waits for a client that does not collect it: drop it all, close (Engine.IO's way)."""
        self.dropped = self.unsent
        self.outbox = []
        self.close(OUTBOX_FULL, notify=False)

    def take_dropped(self) -> int:
        """The bytes dropped when the outbox overflowed, once (then 0): for the adapter's log."""
        dropped, self.dropped = self.dropped, 0
        return dropped

    def writable(self) -> bool:
        """True when packets may go out now on the current transport."""
        if self.transport == "websocket":
            return not self.upgrading
        return self.get_pending

    def take(self) -> list[str]:
        """Packets to write now (and forget), or [] if the transport cannot take them."""
        if not self.outbox or not self.writable():
            return []
        out, self.outbox = self.outbox, []
        self.unsent = 0
        return out

    # polling requests
    def begin_get(self) -> None:
        if self.get_pending:
            raise bad_request()
        self.get_pending = True

    def end_get(self) -> None:
        self.get_pending = False

    def begin_post(self) -> None:
        if self.post_pending:
            raise bad_request()
        self.post_pending = True

    def end_post(self) -> None:
        self.post_pending = False

    # receiving
    def receive(self, kind: str, data: str, now: float) -> str | None:
        """Handle one packet from the client; return the data of a message packet."""
        if self.closed:
            return None
        if kind == MESSAGE:
            return data
        if kind == PONG:
            if self.awaiting_pong:
                self.awaiting_pong = False
                self.next_ping_at = now + self.timing.ping_interval
            return None
        if kind == CLOSE:
            self.close("client close", notify=False)
            return None
        if kind == NOOP:
            return None
        raise PacketError(f"unexpected packet type {kind!r} from client")

    # upgrade
    def begin_upgrade(self, now: float) -> None:
        """A WebSocket with this sid opened to probe; until it upgrades or goes away no other may (as Node)."""
        if self.upgrading or self.transport != "polling":
            raise bad_request()
        self.upgrading = True
        self.upgrade_deadline = now + self.timing.upgrade_timeout

    def upgrade_expired(self, now: float) -> bool:
        """The probing WebSocket sent no `5` within `upgrade_timeout`: drop it, the session polls on
        (as Node). True once per probe; the WebSocket's going away then ends the upgrade."""
        if self.upgrade_deadline is None or now < self.upgrade_deadline:
            return False
        self.upgrade_deadline = None
        return True

    def probe(self) -> str:
        """The client sent `2probe` on the probing WebSocket: answer `3probe`, release a held GET."""
        if not self.upgrading:
            raise PacketError("probe on a session that is not upgrading")
        if self.get_pending:
            self.outbox.append(NOOP)
        return PONG + "probe"

    def upgrade(self) -> None:
        """The client sent `5`: from now on everything goes over the WebSocket."""
        if not self.upgrading:
            raise PacketError("upgrade without probe")
        self.upgrading = False
        self.upgrade_deadline = None
        self.upgraded = True
        self.transport = "websocket"

    def cancel_upgrade(self) -> None:
        """The probing WebSocket went away before `5`: carry on polling."""
        self.upgrading = False
        self.upgrade_deadline = None

    # timers
    def joined(self) -> None:
        self.join_deadline = None

    def next_deadline(self) -> float:
        when = self.ping_sent_at + self.timing.ping_timeout if self.awaiting_pong else self.next_ping_at
        for deadline in (self.join_deadline, self.upgrade_deadline):
            if deadline is not None:
                when = min(when, deadline)
        return when

    def tick(self, now: float) -> None:
        """Send a due ping, or close on a missed pong or a missed namespace join."""
        if self.closed:
            return
        if self.join_deadline is not None and now >= self.join_deadline:
            self.close("no namespace joined")
            return
        if self.awaiting_pong:
            if now >= self.ping_sent_at + self.timing.ping_timeout:
                self.close("ping timeout")
            return
        if now >= self.next_ping_at:
            self.awaiting_pong = True
            self.ping_sent_at = now
            self.send(PING)

    def close(self, reason: str, notify: bool = True) -> None:
        """End the session; `notify` queues a close packet for a held GET."""
        if self.closed:
            return
        if notify:
            self.outbox.append(CLOSE)
        self.closed = True
        self.close_reason = reason

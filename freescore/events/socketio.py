"""Socket.IO v5 packets, sans-I/O: `<type>[<nsp>,][<ackId>][<JSON>]` inside Engine.IO messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from freescore.events.wire import parse_json
from freescore.wireformat import json_text

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = 0, 1, 2, 3, 4, 5, 6
MAX_ACK_DIGITS = 15  # ack ids stay exact JS numbers


class SocketIOError(ValueError):
    """A Socket.IO packet that cannot be parsed or is not allowed; the session is closed."""


@dataclass(frozen=True)
class Packet:
    type: int
    namespace: str = "/"
    ack_id: int | None = None
    data: Any = None
    has_data: bool = False


def dumps(obj: Any) -> str:
    """Compact JSON as socket.io-parser writes it (no ASCII escaping; lone surrogates escaped, as JSON.stringify)."""
    return json_text(obj)


def encode(
    kind: int, data: Any = None, *, namespace: str = "/", ack_id: int | None = None, has_data: bool = True
) -> str:
    out = str(kind)
    if namespace != "/":
        out += namespace + ","
    if ack_id is not None:
        out += str(ack_id)
    if has_data and data is not None:
        out += dumps(data)
    return out


def event(name: str, *args: Any, ack_id: int | None = None) -> str:
    return encode(EVENT, [name, *args], ack_id=ack_id)


def ack(ack_id: int, *args: Any) -> str:
    return encode(ACK, list(args), ack_id=ack_id)


def decode(text: str) -> Packet:
    """Parse one packet the way socket.io-parser does, and check its payload shape."""
    if not text or text[0] not in "0123456789":
        raise SocketIOError("no packet type")
    kind = int(text[0])
    if kind > BINARY_ACK:
        raise SocketIOError(f"unknown packet type {kind}")
    if kind in (BINARY_EVENT, BINARY_ACK):
        raise SocketIOError("binary packets are not supported")
    i = 1
    namespace = "/"
    if i < len(text) and text[i] == "/":
        end = text.find(",", i)
        if end < 0:
            namespace, i = text[i:], len(text)
        else:
            namespace, i = text[i:end], end + 1
    start = i
    while i < len(text) and text[i].isascii() and text[i].isdigit():
        i += 1
    ack_id = None
    if i > start:
        if i - start > MAX_ACK_DIGITS:
            raise SocketIOError("ack id too large")
        ack_id = int(text[start:i])
    rest = text[i:]
    data: Any = None
    has_data = bool(rest)
    if has_data:
        try:
            data = parse_json(rest)
        except ValueError as e:  # parse_json: too deep is a ValueError too
            raise SocketIOError(f"invalid JSON payload: {e}") from None
    packet = Packet(kind, namespace, ack_id, data, has_data)
    _check(packet)
    return packet


def _check(p: Packet) -> None:
    if p.type == CONNECT:
        if p.has_data and not isinstance(p.data, dict):
            raise SocketIOError("CONNECT payload must be an object")
    elif p.type == DISCONNECT:
        if p.has_data:
            raise SocketIOError("DISCONNECT takes no payload")
    elif p.type == EVENT:
        if not (isinstance(p.data, list) and p.data and isinstance(p.data[0], str)):
            raise SocketIOError("EVENT payload must be an array starting with the event name")
    elif p.type == ACK:
        if not isinstance(p.data, list):
            raise SocketIOError("ACK payload must be an array")
    elif p.type == CONNECT_ERROR:
        raise SocketIOError("CONNECT_ERROR is sent by servers only")

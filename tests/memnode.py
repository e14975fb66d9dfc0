"""A whole freescore built from a configuration on a `MemoryReactorClock`, reached through `StringTransport`s.

The real composition root, sites, resources, Autobahn and protocol services
run; only the sockets and the clock are Twisted's test doubles. Adapter tests
read the exact bytes a service writes: HTTP answers and WebSocket frames.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import txaio
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport

from freescore import config
from freescore.app import FreescoreService
from freescore.gateway import wire as gateway_wire
from freescore.gateway.hooks import HookResult

LISTEN = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'
PEER = IPv4Address("TCP", "192.0.2.7", 40000)


@contextmanager
def autobahn_clock(clock: MemoryReactorClock) -> Iterator[None]:
    """Autobahn's own timers (handshake and close timeouts) on the test clock too."""
    before = txaio.config.loop
    txaio.config.loop = clock
    try:
        yield
    finally:
        txaio.config.loop = before


class Transport(StringTransport):
    """A StringTransport that, like Twisted's TCP transports, lets a producer be unregistered twice."""

    protocol: Any = None

    def unregisterProducer(self) -> None:
        self.producer = None


class Node:
    """`FreescoreService(config)` on a memory reactor; `start(name)` starts one protocol service."""

    def __init__(self, config_text: str, folder: Path) -> None:
        self.clock = MemoryReactorClock()
        cfg = config.parse(config_text, folder / "freescore.toml")
        self.freescore = FreescoreService(cfg, self.clock)

    def start(self, *names: str) -> Node:
        for name in names:
            self.freescore.protocols[name].startService()
        return self

    def service(self, name: str) -> Any:
        return self.freescore.protocols[name]

    def http(self, request: bytes, listener: int = 0) -> bytes:
        """Send raw request bytes to a listener's site; everything it wrote back so far."""
        transport = self.connect(listener)
        transport.protocol.dataReceived(request)
        return bytes(transport.value())

    def connect(self, listener: int = 0) -> Transport:
        site = self.freescore.listeners[listener].site
        channel = site.buildProtocol(PEER)
        transport = Transport(peerAddress=PEER)
        transport.protocol = channel
        channel.makeConnection(transport)
        return transport

    def websocket(self, path: str, headers: dict[str, str] | None = None, listener: int = 0) -> Peer:
        """Open a WebSocket through the listener's site (Twisted Web, then Autobahn)."""
        transport = self.connect(listener)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", "Host: node", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        transport.protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
        return Peer(transport, path)

    def expect(self, peer: Peer, predicate: Any, seconds: float = 0.0, step: float = 0.05) -> Any:
        """`peer`'s first JSON message that `predicate` accepts (earlier ones are dropped); while none
        has come, the clock advances in `step`s, `seconds` at most."""
        self.clock.advance(0)
        for k in range(round(seconds / step) + 1):
            if k:
                self.clock.advance(step)
            peer.inbox += peer.messages()
            while peer.inbox:
                message = peer.inbox.pop(0)
                if predicate(message):
                    return message
        raise AssertionError(f"{peer.path}: no such message within {seconds}s of the test clock")

    def quiet(self, seconds: float, peers: Sequence[Peer], files: Sequence[Path] = (), step: float = 0.05) -> None:
        """Advance the clock `seconds` in `step`s: after every step no peer got a byte and no file changed.

        Proves that a cancelled timer never fires without waiting on a wall clock: each call
        that falls due runs inside `advance`, so small steps pass every pause in turn.
        """
        assert [p.inbox for p in peers if p.inbox] == [], "read but not taken before the quiet"
        before = {f: f.read_bytes() for f in files}
        for k in range(1, round(seconds / step) + 1):
            self.clock.advance(step)
            for peer in peers:
                assert peer.written() == b"", f"{peer.path} was written to {k * step:.2f}s on"
            for f in files:
                assert f.read_bytes() == before[f], f"{f.name} changed {k * step:.2f}s on"


def client_frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
    """A masked client frame, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes((0x80 * fin | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 * fin | opcode, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((0x80 * fin | opcode, 0x80 | 127)) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_frame(code: int, reason: str = "") -> bytes:
    """The unmasked close frame a server sends: opcode 8, the code, the UTF-8 reason."""
    payload = struct.pack("!H", code) + reason.encode()
    return bytes((0x88, len(payload))) + payload


class Peer:
    """The client end of one WebSocket: what it sends, and the server's bytes as they came."""

    def __init__(self, transport: Transport, path: str = "") -> None:
        self.transport = transport
        self.path = path
        self.inbox: list[Any] = []  # messages read but not yet taken (`Node.expect`)
        head, _, rest = bytes(transport.value()).partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        self.head = head
        self._early = rest  # frames written with the 101
        transport.clear()

    @property
    def proto(self) -> Any:
        return self.transport.protocol

    def send(self, data: str | bytes, binary: bool = False) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self.proto.dataReceived(client_frame(payload, 2 if binary else 1))

    def send_raw(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def written(self) -> bytes:
        """Everything written since the last call."""
        data = self._early + bytes(self.transport.value())
        self._early = b""
        self.transport.clear()
        return data

    def frames(self) -> list[tuple[int, bytes]]:
        """The server frames written since the last call, as (opcode, payload)."""
        return split_frames(self.written())

    def texts(self) -> list[str]:
        return [p.decode() for op, p in self.frames() if op == 1]

    def messages(self) -> list[Any]:
        """The text frames written since the last call, parsed as JSON."""
        return [json.loads(t) for t in self.texts()]


def split_frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n = struct.unpack("!H", data[i:i + 2])[0]
            i += 2
        elif n == 127:
            n = struct.unpack("!Q", data[i:i + 8])[0]
            i += 8
        out.append((opcode, data[i:i + n]))
        i += n
    return out


class Backend:
    """The hooks' backend as the gateway sees it: admits every client, answers every PUT (slowly, if held)."""

    def __init__(self) -> None:
        self.held: list[Deferred[HookResult]] = []
        self.hold = False

    def connect(self, conn_id: str, credential: str, ws: str, timeout_ms: int) -> Deferred[gateway_wire.Decision]:
        return succeed(gateway_wire.ADMIT)

    def message(self, conn_id: str, credential: str, hook: object) -> Deferred[HookResult]:
        if not self.hold:
            return succeed(HookResult(200))
        d: Deferred[HookResult] = Deferred()
        self.held.append(d)
        return d

    def close(self, conn_id: str, credential: str, ws: str, delays: tuple[float, ...]) -> Deferred[HookResult]:
        return succeed(HookResult(200))

    def stop(self) -> Deferred[None]:
        return succeed(None)

"""A raw-socket WebSocket client that behaves like the Espruino clicker firmware.

Host header without port, `Origin: Espruino`, masked frames, pongs carrying
the literal payload `pong`, and TCP closed without a close handshake.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class Closed(Exception):
    """The server closed the TCP connection (or sent a close frame)."""

    def __init__(self, code: int | None = None) -> None:
        super().__init__(f"closed, code={code}")
        self.code = code


class RawDevice:
    def __init__(self, port: int, path: str = "/ws", *, answer_pings: bool = True, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.answer_pings = answer_pings
        self.pings = 0
        self.frames: list[tuple[int, bool, bytes]] = []
        """Every frame received: (opcode, fin, payload)."""
        self._buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: Espruino\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        self.status = int(head.split(" ", 2)[1])
        self.headers = {
            k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in head.split("\r\n")[1:] if ":" in ln)
        }
        if self.status == 101:
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            assert self.headers["sec-websocket-accept"] == accept

    def _chunk(self) -> bytes:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed()
        return chunk

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buf:
            self._buf += self._chunk()
        head, _, self._buf = self._buf.partition(marker)
        return head

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += self._chunk()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        self.send_frame(TEXT, text.encode())

    def recv_frame(self) -> tuple[int, bytes]:
        b0, b1 = self._read(2)
        assert not b1 & 0x80, "server frames must not be masked"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read(8))
        payload = self._read(n)
        self.frames.append((b0 & 0x0F, bool(b0 & 0x80), payload))
        return b0 & 0x0F, payload

    def recv(self) -> str:
        """The next text message, answering pings on the way (with `pong`, as the firmware does)."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == PING:
                self.pings += 1
                if self.answer_pings:
                    self.send_frame(PONG, b"pong")
                continue
            if opcode == CLOSE:
                raise Closed(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)
            if opcode == PONG:
                continue
            assert opcode == TEXT, f"unexpected opcode {opcode}"
            return payload.decode()

    def wait_closed(self) -> int | None:
        """Read until the server ends the connection; the close code if a close frame came."""
        try:
            while True:
                self.recv()
        except Closed as e:
            return e.code

    def abort(self) -> None:
        """Vanish like a device off WiFi: RST, no close frame."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()

"""The floor under bench/clicker_load.py: what Twisted and the kernel cost alone for the same load.

A bare Twisted server speaking just enough of the clicker protocol for the load
generator: the WebSocket handshake, masked small text frames in, `REGISTER` ->
`REGISTERED <n>`, `SCORE m t s` -> `SCORED m t` (sent straight to the socket, as
freescore does), `SUBSCRIBE`/`LISTEN` -> `CONNECT ...` and relays. No limits, no
retry filter, no metrics, no logging, no error handling: not a server to run,
a reference to measure against. freescore's CPU per SCORE minus this one's is
what freescore's own Python costs on top of the reactor and the kernel.

    python3 bench/clicker_load.py --server floor --listeners 0 --rates 30
    python3 bench/clicker_floor.py [--reactor epoll|asyncio|uvloop]   # prints its URL, runs until killed
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import subprocess
import sys
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def install_reactor(kind: str) -> None:
    """epoll (Twisted's default on Linux), asyncio, or asyncio on uvloop (`pip install uvloop`)."""
    if kind == "epoll":
        return
    import asyncio

    if kind == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from twisted.internet import asyncioreactor

    asyncioreactor.install(asyncio.new_event_loop())


def frame(text: bytes) -> bytes:
    n = len(text)
    return (bytes((0x81, n)) if n < 126 else bytes((0x81, 126)) + n.to_bytes(2, "big")) + text


def serve(reactor_kind: str) -> None:
    install_reactor(reactor_kind)
    from twisted.internet import endpoints, protocol, reactor

    watchers: dict[bytes, list[protocol.Protocol]] = {}
    counter = [0]

    class Floor(protocol.Protocol):
        buf = b""
        opened = False

        def dataReceived(self, data: bytes) -> None:
            if not self.opened:
                self.handshake(data)
                return
            i, n, out = 0, len(self.buf) + len(data), []
            data = self.buf + data
            while n - i >= 6:
                length, at = data[i + 1] & 0x7F, i + 2
                if length == 126:  # a SUBSCRIBE of many ids
                    length, at = int.from_bytes(data[i + 2:i + 4], "big"), i + 4
                end = at + 4 + length
                if end > n:
                    break
                key = data[at:at + 4] * ((length + 3) >> 2)
                mask = int.from_bytes(key, "little") & ((1 << (length << 3)) - 1)
                words = (int.from_bytes(data[at + 4:end], "little") ^ mask).to_bytes(length, "little").split(b" ")
                i = end
                if words[0] == b"SCORE":
                    out.append(frame(b"SCORED " + words[1] + b" " + words[2]))
                    for w in watchers.get(getattr(self, "device_id", b""), ()):
                        w.transport.write(frame(b"SCORE " + words[2] + b" " + words[3] + b" " + self.device_id))
                elif words[0] == b"REGISTER":
                    counter[0] += 1
                    self.device_id = b"%06d" % counter[0]
                    out.append(frame(b"REGISTERED " + self.device_id + b" s"))
                elif words[0] in (b"SUBSCRIBE", b"LISTEN"):
                    for device_id in words[1:]:
                        watchers.setdefault(device_id, []).append(self)
                    out.append(frame(b"CONNECT " + b" ".join(words[1:])))
            self.buf = data[i:]
            if out:
                self.transport.socket.send(b"".join(out))

        def handshake(self, data: bytes) -> None:
            self.buf += data
            if b"\r\n\r\n" not in self.buf:
                return
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            key = next(ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
                       if ln.lower().startswith(b"sec-websocket-key"))
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            self.transport.setTcpNoDelay(True)
            self.opened = True

    def listening(port) -> None:
        print(f"floor: listening on http://127.0.0.1:{port.getHost().port}", flush=True)

    endpoint = endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1:backlog=1024")
    endpoint.listen(protocol.Factory.forProtocol(Floor)).addCallback(listening)
    reactor.run()


class FloorProcess:
    """The floor server as a child process, with what clicker_load uses of a FreescoreProcess."""

    def __init__(self, reactor_kind: str = "epoll", wrapper: list[str] | None = None, timeout: float = 30) -> None:
        """`wrapper` goes before the interpreter (e.g. valgrind's command line)."""
        self.proc = subprocess.Popen([*(wrapper or []), sys.executable, __file__, "--reactor", reactor_kind],
                                     stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        ready = threading.Event()
        self._url = ""

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith("floor: listening on "):
                    self._url = line.split(" on ", 1)[1].strip()
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout) or not self._url:
            self.stop()
            raise RuntimeError("the floor server did not start")

    def url(self, index: int = 0, scheme: str | None = None) -> str:
        return self._url.replace("http://", "ws://") if scheme == "ws" else self._url

    def port(self, index: int = 0) -> int:
        return int(self._url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 10) -> None:
        self.proc.terminate()
        self.proc.wait(timeout)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reactor", choices=["epoll", "asyncio", "uvloop"], default="epoll")
    serve(ap.parse_args().reactor)

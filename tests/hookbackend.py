"""A webhook backend for gateway tests: real `http.server` on loopback, closing its connections as told."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WAIT = 30.0


class Backend:
    """Admits everyone and records every hook it answers; `mode` says what it does to its connections.

    - `plain`: HTTP/1.1 keep-alive, keeps every connection;
    - `http10`: HTTP/1.0, closes after each answer (Python's default server);
    - `idle`: HTTP/1.1 keep-alive, closes a connection idle for 1 s;
    - `third`: closes after every third answer on a connection without saying so;
    - `third-announced`: the same, with `Connection: close` on that answer;
    - `race`: closes a reused connection as its next request arrives, unanswered
      (the backend's idle close crossing a request on the wire);
    - `drop`: closes, unanswered, any connection a message `drop` comes on.

    `put_delay` seconds pass before each PUT is recorded and answered (a slow backend); with `hold`
    each PUT is recorded on arrival and answered only after `release()` (a hanging backend).
    `endless` names a method whose answers are a 200 whose body never ends: a flood, or with
    `drip` a few bytes now and then; `cut` counts those the gateway closed.
    """

    def __init__(self, mode: str = "plain", put_delay: float = 0.0, endless: str = "", drip: bool = False,
                 hold: bool = False) -> None:
        self.hooks: list[tuple[str, str, str, bytes]] = []  # method, id, credential, body
        self.released = threading.Event()
        if not hold:
            self.released.set()
        self.dropped = 0
        self.cut = 0
        self.cond = threading.Condition()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0" if mode == "http10" else "HTTP/1.1"
            timeout = 1.0 if mode == "idle" else None
            served = 0

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                self.served += 1
                if self.command == "PUT" and put_delay:
                    time.sleep(put_delay)
                if (mode == "race" and self.served == 2) or (mode == "drop" and body == b"drop"):
                    with backend.cond:
                        backend.dropped += 1
                    self.close_connection = True  # unanswered: the request is not applied
                    return
                with backend.cond:
                    backend.hooks.append((self.command, self.path.rsplit("/", 1)[1],
                                          self.headers.get("authorization", ""), body))
                    backend.cond.notify_all()
                if self.command == "PUT":
                    backend.released.wait()
                if self.command == endless:
                    self._answer_forever()
                    return
                reply = b'{"code":"OK"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                if mode == "third-announced" and self.served % 3 == 0:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply)
                if mode == "third" and self.served % 3 == 0:
                    self.close_connection = True

            def _answer_forever(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(1 << 40))
                self.end_headers()
                self.close_connection = True
                try:
                    while True:
                        self.wfile.write(b"{}     " if drip else b" " * 65536)
                        if drip:
                            time.sleep(0.1)
                except OSError:
                    with backend.cond:
                        backend.cut += 1
                        backend.cond.notify_all()

            do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/websocket"

    def wait(self, predicate, what: str) -> None:
        deadline = time.monotonic() + WAIT
        with self.cond:
            while not predicate(self.hooks):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"backend: waiting for {what}; got {len(self.hooks)} hooks")
                self.cond.wait(left)

    def count(self, method: str) -> int:
        return sum(1 for h in self.hooks if h[0] == method)

    def release(self) -> None:
        """Answer the held PUTs, and the later ones at once."""
        self.released.set()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

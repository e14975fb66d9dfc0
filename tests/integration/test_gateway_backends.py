"""The gateway against backends that close their keep-alive connections.

Real `http.server` backends on loopback, a real `twistd freescore` and ten
`websockets` clients: whatever the backend does with its connections (HTTP/1.0
and a close after each answer, an idle timeout, a close after every third
request, said or unsaid, a close as the next request comes in), every message
reaches it exactly once and in order per client.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from websockets.asyncio.client import connect

from harness import FreescoreProcess

CLIENTS = 10
MESSAGES = 100  # per client: 1 000 in all
WAIT = 30.0
RETRY_LINE = "sending it again on a new connection"


class Backend:
    """Records every hook it answers; `mode` says what it does to its connections.

    - `http10`: HTTP/1.0, closes after each answer (Python's default server);
    - `idle`: HTTP/1.1 keep-alive, closes a connection idle for 1 s;
    - `third`: closes after every third answer on a connection without saying so;
    - `third-announced`: the same, with `Connection: close` on that answer;
    - `race`: closes a reused connection as its next request arrives, unanswered
      (the backend's idle close crossing a request on the wire);
    - `drop`: closes, unanswered, any connection a message `drop` comes on.
    """

    def __init__(self, mode: str) -> None:
        self.hooks: list[tuple[str, str, str, bytes]] = []  # method, id, credential, body
        self.dropped = 0
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
                if (mode == "race" and self.served == 2) or (mode == "drop" and body == b"drop"):
                    with backend.cond:
                        backend.dropped += 1
                    self.close_connection = True  # unanswered: the request is not applied
                    return
                with backend.cond:
                    backend.hooks.append((self.command, self.path.rsplit("/", 1)[1],
                                          self.headers.get("authorization", ""), body))
                    backend.cond.notify_all()
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

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def config(api_uri: str) -> str:
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[gateway]
api_uri = "{api_uri}"
hook_timeout = 5000
"""


async def clients(url: str, backend: Backend) -> list[str]:
    """Ten clients send half their messages, pause past the idle close, send the rest."""
    creds = [f"client{i}-{uuid.uuid4().hex}" for i in range(CLIENTS)]
    socks = [await connect(url, additional_headers={"Authorization": c}) for c in creds]
    half = MESSAGES // 2
    for part, (start, stop) in enumerate(((0, half), (half, MESSAGES))):
        await asyncio.gather(*(send(ws, i, start, stop) for i, ws in enumerate(socks)))
        await asyncio.to_thread(backend.wait, lambda hs, n=stop: sum(h[0] == "PUT" for h in hs) >= CLIENTS * n,
                                f"{CLIENTS * stop} PUTs")
        if part == 0:
            await asyncio.sleep(1.2)  # the idle backend closes every connection meanwhile
    for ws in socks:
        await ws.close()
    return creds


async def send(ws, client: int, start: int, stop: int) -> None:
    for j in range(start, stop):
        await ws.send(f"client {client} message {j}")


@pytest.mark.parametrize("mode", ["http10", "idle", "third", "third-announced", "race"])
def test_every_message_reaches_a_closing_backend_once_in_order(tmp_path, mode):
    backend = Backend(mode)
    fs = FreescoreProcess(config(backend.url), tmp_path).start()
    try:
        creds = asyncio.run(asyncio.wait_for(clients(fs.url(0, "ws") + "/gateway", backend), 120))
        backend.wait(lambda hs: sum(h[0] == "DELETE" for h in hs) >= CLIENTS, "the DELETE hooks")
    finally:
        fs.stop()
        backend.stop()
    assert backend.count("POST") == CLIENTS and backend.count("DELETE") == CLIENTS
    for i, cred in enumerate(creds):
        conn_id = next(h[1] for h in backend.hooks if h[0] == "POST" and h[2] == cred)
        puts = [h[3].decode() for h in backend.hooks if h[0] == "PUT" and h[1] == conn_id]
        assert puts == [f"client {i} message {j}" for j in range(MESSAGES)]
    log = fs.log()
    assert not re.search(r"hook for \S+ (failed|gave up)", log), log
    if mode in ("http10", "third-announced"):
        assert RETRY_LINE not in log  # retired after the answer that said so: never reused
    if mode == "race":
        assert RETRY_LINE in log


def test_a_hook_dropped_again_on_a_new_connection_is_logged_and_not_sent_a_third_time(tmp_path):
    backend = Backend("drop")
    fs = FreescoreProcess(config(backend.url), tmp_path).start()

    async def main() -> None:
        async with connect(fs.url(0, "ws") + "/gateway") as ws:
            await ws.send("drop")  # on the connect hook's connection, then on a new one
            await ws.send("after")
            await asyncio.to_thread(backend.wait, lambda hs: backend.count("PUT"), "the PUT after")

    try:
        asyncio.run(asyncio.wait_for(main(), 60))
        line = fs.wait_log(r"message hook for \S+ failed")
    finally:
        fs.stop()
        backend.stop()
    assert backend.dropped == 2
    assert [h[3] for h in backend.hooks if h[0] == "PUT"] == [b"after"]
    assert RETRY_LINE in fs.log()
    assert "no answer on a reused connection" in line and "nor on a new one" in line, line

"""The webhook gateway in a real `twistd freescore`, with a real backend and real clients.

The backend is an HTTP server in a thread on loopback that records every hook
and admits by the client's credential; clients are the `websockets` library;
the push API is driven with `requests`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness import FreescoreProcess

TOKEN = "push-token-123"
SECRET = "hmac-secret-456"
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
WAIT = 10.0


class Hook:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def conn_id(self) -> str:
        return self.path.rsplit("/", 1)[1]

    def __repr__(self) -> str:
        return f"Hook({self.method} {self.path} {self.headers.get('authorization')!r} {self.body[:40]!r})"


class Backend:
    """A backend on loopback that records hooks and admits by the forwarded credential.

    Authorization `deny401`/`deny403` -> that status, `no` -> 200 {"code":"NO"},
    `boom` -> 500, `slow` -> answers after 3 s, `late-*` -> admits after 0.5 s;
    anything else is admitted.
    `retry-delete` makes the first DELETE of that connection answer 503; `stall-*`
    makes every PUT wait 3 s (beyond the gateway's hook timeout).
    """

    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self.cond = threading.Condition()
        self.release = threading.Event()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                hook = Hook(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with backend.cond:
                    backend.hooks.append(hook)
                    backend.cond.notify_all()
                status, reply = backend.answer(hook)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, hook: Hook) -> tuple[int, bytes]:
        auth = hook.headers.get("authorization", "")
        ok = b'{"code":"OK"}'
        if hook.method == "POST":
            if auth == "deny401":
                return 401, b'{"code":"UNAUTHORIZED"}'
            if auth == "deny403":
                return 403, b'{"code":"FORBIDDEN"}'
            if auth == "no":
                return 200, b'{"code":"NO"}'
            if auth == "boom":
                return 500, b"{}"
            if auth == "slow":
                self.release.wait(3)
                return 200, ok
            if auth.startswith("late-"):
                self.release.wait(0.5)
                return 200, ok
        if hook.method == "PUT" and auth.startswith("stall-"):
            self.release.wait(3)
            return 200, ok
        if hook.method == "DELETE" and auth == "retry-delete":
            with self.cond:
                deletes = [h for h in self.hooks if h.method == "DELETE" and h.path == hook.path]
            if len(deletes) == 1:
                return 503, b"{}"
        return 200, ok

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/websocket"

    def wait(self, predicate, what: str = "hooks") -> list[Hook]:
        """Wait until `predicate(hooks)` is true; return the matching hooks list."""
        deadline = time.monotonic() + WAIT
        with self.cond:
            while True:
                found = predicate(list(self.hooks))
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"backend: no {what}; got {self.hooks}")
                self.cond.wait(left)

    def of(self, conn_id: str, method: str | None = None) -> list[Hook]:
        with self.cond:
            return [h for h in self.hooks if h.conn_id == conn_id and (method is None or h.method == method)]

    def connect_hook(self, credential: str) -> Hook:
        return self.wait(lambda hs: [h for h in hs if h.method == "POST" and
                                     h.headers.get("authorization") == credential], f"POST for {credential}")[-1]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def backend():
    b = Backend()
    yield b
    b.stop()


def gateway_config(api_uri: str, extra: str = "") -> str:
    return f"""
[[listen]]
name = "public"
endpoint = "tcp:0:interface=127.0.0.1"

[[listen]]
name = "admin"
endpoint = "tcp:0:interface=127.0.0.1"

[gateway]
api_uri = "{api_uri}"
push_token = "{TOKEN}"
push_hmac_secret = "{SECRET}"
push_listen = ["admin"]
hook_timeout = 1000
close_retry_delays = [0.2, 0.4]
{extra}
"""


@pytest.fixture(scope="module")
def gw(backend, tmp_path_factory):
    fs = FreescoreProcess(gateway_config(backend.url), tmp_path_factory.mktemp("gateway")).start()
    yield fs
    fs.stop()


def ws_url(fs: FreescoreProcess, query: str = "") -> str:
    return fs.url(0, "ws") + "/gateway" + query


def push_url(fs: FreescoreProcess, conn_id: str) -> str:
    return fs.url(1) + "/@connections/" + conn_id


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def signed(method: str, path: str, body: bytes, ts: int | None = None, key: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    message = f"{stamp}\n{method}\n{path}\n".encode() + body
    sig = "sha256=" + hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
    return {"X-Freescore-Timestamp": stamp, "X-Freescore-Signature": sig}


def credential() -> str:
    return "ok-" + uuid.uuid4().hex


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def http(method: str, url: str, **kw) -> requests.Response:
    return await asyncio.to_thread(requests.request, method, url, timeout=WAIT, **kw)


async def closed_code(ws) -> tuple[int | None, str | None]:
    """Read until the server closes; the close code and reason it sent."""
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as e:
        return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, None)


# -- admission ---------------------------------------------------------------------------


def test_connect_hook_admits_with_ws_uri(gw, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}) as ws:
            hook = backend.connect_hook(cred)
            assert UUID4.fullmatch(hook.conn_id)
            assert hook.path == f"/websocket/{hook.conn_id}"
            assert hook.headers["content-type"] == "application/json"
            assert json.loads(hook.body) == {
                "code": "NEW_CONNECTION", "ws_uri": f"{gw.url(1)}/@connections/{hook.conn_id}", "timeout": 30000,
            }
            assert ws.subprotocol is None

    run(main())


@pytest.mark.parametrize("cred, status, code", [
    ("deny401", 401, "UNAUTHORIZED"),
    ("deny403", 403, "FORBIDDEN"),
    ("no", 403, "FORBIDDEN"),
    ("boom", 502, "BACKEND_ERROR"),
    ("slow", 504, "BACKEND_TIMEOUT"),
])
def test_refusals_are_real_http_statuses_without_hooks(gw, backend, cred, status, code):
    async def main():
        with pytest.raises(InvalidStatus) as e:
            async with connect(ws_url(gw), additional_headers={"Authorization": cred}):
                pass
        assert e.value.response.status_code == status
        assert json.loads(e.value.response.body) == {"code": code}
        refused = backend.connect_hook(cred).conn_id
        # An admitted connection's full cycle, then: nothing ever came for the refused one.
        ok = credential()
        async with connect(ws_url(gw), additional_headers={"Authorization": ok}):
            pass
        admitted = backend.connect_hook(ok).conn_id
        backend.wait(lambda hs: [h for h in hs if h.method == "DELETE" and h.conn_id == admitted], "DELETE")
        assert [h.method for h in backend.of(refused)] == ["POST"]

    run(main())
    assert requests.get(gw.url(0) + "/status", timeout=5).text == "OK"


def test_backend_down_gives_502_and_process_stays_up_and_push_allow(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    config = gateway_config(f"http://127.0.0.1:{dead}/websocket", 'push_allow = ["10.0.0.0/8"]')
    fs = FreescoreProcess(config, tmp_path).start()
    try:
        r = requests.put(push_url(fs, str(uuid.uuid4())), data=b"x", headers=bearer(), timeout=5)
        assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")  # 127.0.0.1 is not in push_allow

        async def main():
            for _ in range(2):
                with pytest.raises(InvalidStatus) as e:
                    async with connect(ws_url(fs)):
                        pass
                assert e.value.response.status_code == 502
                assert json.loads(e.value.response.body) == {"code": "BACKEND_ERROR"}

        run(main())
        assert requests.get(fs.url(0) + "/status", timeout=5).text == "OK"
    finally:
        fs.stop()


def test_credential_from_subprotocol_query_or_none(gw, backend):
    sub, query = "sub" + uuid.uuid4().hex, "q" + uuid.uuid4().hex

    async def main():
        async with connect(ws_url(gw), subprotocols=["Authorization", sub]) as ws:
            assert ws.subprotocol == "Authorization"
            backend.connect_hook(sub)
        async with connect(ws_url(gw, f"?token={query}&x=1")) as ws:
            backend.connect_hook(query)
        before = len(backend.wait(lambda hs: hs))
        async with connect(ws_url(gw)) as ws:
            await ws.send("who am i")
            hooks = backend.wait(lambda hs: [h for h in hs[before:] if h.body == b"who am i"], "PUT")
            assert hooks[0].headers["authorization"] == "None"

    run(main())
    assert sub not in gw.log() and query not in gw.log()  # credentials are never logged


def raw_handshake(port: int, headers: str = "") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    s.sendall(b"GET /gateway HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              + headers.encode() + b"\r\n")
    return s


def test_client_leaving_during_admission_still_gets_close_hook(gw, backend):
    cred = "late-" + uuid.uuid4().hex
    s = raw_handshake(gw.port(0), f"Authorization: {cred}\r\n")
    conn_id = backend.connect_hook(cred).conn_id
    s.close()  # gone before the backend admits
    hooks = backend.wait(lambda hs: [h for h in hs if h.conn_id == conn_id and h.method == "DELETE"], "DELETE")
    assert json.loads(hooks[0].body)["code"] == "CONNECTION_CLOSE"
    assert [h.method for h in backend.of(conn_id)] == ["POST", "DELETE"]


def test_a_second_request_sent_while_the_connect_hook_waits_is_no_second_connection(gw, backend):
    """Autobahn took it for a second handshake: a second connect hook, two 101s, a traceback, and
    the first id admitted by the backend never got its DELETE."""
    cred, second = "late-" + uuid.uuid4().hex, "late-second-" + uuid.uuid4().hex
    s = raw_handshake(gw.port(0), f"Authorization: {cred}\r\n")
    conn_id = backend.connect_hook(cred).conn_id
    s.sendall(b"GET /gateway HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              + f"Authorization: {second}\r\n\r\n".encode())
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        buf.extend(s.recv(4096))
    assert buf.startswith(b"HTTP/1.1 101")
    del buf[:buf.index(b"\r\n\r\n") + 4]
    while (frame := read_frame(s, buf))[0] != 0x8:  # those bytes are no frame: closed 1002
        pass
    assert int.from_bytes(frame[2][:2], "big") == 1002
    s.close()
    backend.wait(lambda hs: backend.of(conn_id, "DELETE"), "DELETE")
    assert [h.method for h in backend.of(conn_id)] == ["POST", "DELETE"]
    with backend.cond:
        assert not [h for h in backend.hooks if h.headers.get("authorization") == second]
    assert "Unhandled error" not in gw.log()


def read_frame(s: socket.socket, buf: bytearray) -> tuple[int, bool, bytes]:
    """(opcode, fin, payload) of one unmasked server frame."""

    def need(n: int) -> bytes:
        while len(buf) < n:
            chunk = s.recv(65536)
            assert chunk, "connection closed"
            buf.extend(chunk)
        out = bytes(buf[:n])
        del buf[:n]
        return out

    b0, b1 = need(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(need(2), "big")
    elif length == 127:
        length = int.from_bytes(need(8), "big")
    return b0 & 0x0F, bool(b0 & 0x80), need(length)


def raw_client(gw: FreescoreProcess, backend: Backend) -> tuple[socket.socket, bytearray, str]:
    """An admitted raw client: its socket, the bytes read after the 101, its connection id."""
    cred = credential()
    s = raw_handshake(gw.port(0), f"Authorization: {cred}\r\n")
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        buf.extend(s.recv(4096))
    assert buf.startswith(b"HTTP/1.1 101")
    del buf[:buf.index(b"\r\n\r\n") + 4]
    return s, buf, backend.connect_hook(cred).conn_id


def test_large_push_is_fragmented_at_max_frame(gw, backend):
    s, buf, conn_id = raw_client(gw, backend)
    r = requests.put(push_url(gw, conn_id), data=b"z" * 100_000, headers=bearer(), timeout=5)
    assert r.status_code == 200
    frames = []
    while not frames or not frames[-1][1]:
        opcode, fin, payload = read_frame(s, buf)
        if opcode in (0x9, 0xA):  # a keepalive ping/pong may interleave
            continue
        frames.append((opcode, fin, payload))
    s.close()
    assert frames[0][0] == 0x1 and all(f[0] == 0x0 for f in frames[1:])
    assert all(len(f[2]) <= 32768 for f in frames) and len(frames) == 4
    assert b"".join(f[2] for f in frames) == b"z" * 100_000


def test_push_to_a_client_that_does_not_read_gets_429(gw, backend):
    cred = credential()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(WAIT)
    s.connect(("127.0.0.1", gw.port(0)))
    s.sendall(b"GET /gateway HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              + f"Authorization: {cred}\r\n\r\n".encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 101")
    url = push_url(gw, backend.connect_hook(cred).conn_id)
    statuses = []
    with requests.Session() as http_session:
        for _ in range(400):  # the client never reads: kernel buffers fill, then freescore's
            r = http_session.put(url, data=b"q" * 131072, headers=bearer(), timeout=WAIT)
            statuses.append(r.status_code)
            if r.status_code != 200:
                break
    s.close()
    assert statuses[-1] == 429, statuses[-3:]
    assert r.json()["code"] == "LIMIT_EXCEEDED"
    assert r.headers["x-amzn-ErrorType"] == "LimitExceededException"


def test_any_path_on_listeners_of_its_own(gw, backend):
    cred = credential()

    async def main():
        async with connect(gw.url(0, "ws") + "/any/path", additional_headers={"Authorization": cred}) as ws:
            await ws.send("anywhere")
            conn_id = backend.connect_hook(cred).conn_id
            await asyncio.to_thread(backend.wait, lambda hs: backend.of(conn_id, "PUT"))

    run(main())


def test_plain_http_on_path_is_426(gw):
    r = requests.get(gw.url(0) + "/gateway", timeout=5)
    assert r.status_code == 426


# -- message and close hooks -----------------------------------------------------------------


def test_messages_arrive_in_order_then_one_delete(gw, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}) as ws:
            conn_id = backend.connect_hook(cred).conn_id
            for i in range(20):
                await ws.send(f"hello {i}")
            await ws.send(b"\x00\x01bin")
            await ws.ping()
            backend.wait(lambda hs: len([h for h in hs if h.conn_id == conn_id and h.method == "PUT"]) >= 21)
        return conn_id

    conn_id = run(main())
    backend.wait(lambda hs: [h for h in hs if h.conn_id == conn_id and h.method == "DELETE"], "DELETE")
    hooks = backend.of(conn_id)
    assert [h.method for h in hooks] == ["POST"] + ["PUT"] * 21 + ["DELETE"]
    puts = hooks[1:-1]
    assert [h.body for h in puts[:20]] == [f"hello {i}".encode() for i in range(20)]
    assert {h.headers["content-type"] for h in puts[:20]} == {"application/json"}
    assert puts[20].body == b"\x00\x01bin"
    assert puts[20].headers["content-type"] == "application/octet-stream"
    assert all(h.headers["authorization"] == cred for h in hooks)
    assert json.loads(hooks[-1].body) == {"code": "CONNECTION_CLOSE", "ws_uri": f"{gw.url(1)}/@connections/{conn_id}"}


def masked(opcode: int, payload: bytes) -> bytes:
    """One short client frame (masked, as clients must)."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_a_message_crossing_a_server_close_still_reaches_the_backend(gw, backend):
    s, buf, conn_id = raw_client(gw, backend)
    assert requests.delete(push_url(gw, conn_id), headers=bearer(), timeout=5).status_code == 204
    while (frame := read_frame(s, buf))[0] != 0x8:
        pass
    s.sendall(masked(0x1, b"sent before the close was read") + masked(0x8, frame[2]))
    backend.wait(lambda hs: [h for h in hs if h.conn_id == conn_id and h.method == "DELETE"], "DELETE")
    s.close()
    assert [(h.method, h.body) for h in backend.of(conn_id)][1:-1] == [("PUT", b"sent before the close was read")]


def test_close_hook_retried_after_503(gw, backend):
    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": "retry-delete"}):
            pass

    run(main())
    hooks = backend.wait(lambda hs: [h for h in hs if h.method == "DELETE"
                                     and h.headers["authorization"] == "retry-delete"][1:], "second DELETE")
    assert len(hooks) == 1


def test_backend_too_slow_closes_1013(gw, backend):
    cred = "stall-" + uuid.uuid4().hex

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}) as ws:
            for i in range(300):  # far more than 256 while the first PUT hangs
                await ws.send(f"m{i}")
            return await closed_code(ws)

    assert run(main()) == (1013, "Backend too slow")


# -- push API ------------------------------------------------------------------------------


def test_push_text_binary_and_post(gw, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}) as ws:
            url = push_url(gw, backend.connect_hook(cred).conn_id)
            r = await http("PUT", url, data=b"no credentials")
            assert r.status_code == 401
            assert r.json()["code"] == "UNAUTHORIZED"
            assert r.headers["x-amzn-ErrorType"] == "UnauthorizedException"
            r = await http("PUT", url, data="héllo".encode(), headers=bearer())
            assert (r.status_code, r.json()) == (200, {"code": "OK"})
            assert await ws.recv() == "héllo"
            binary = {**bearer(), "Content-Type": "application/octet-stream"}
            r = await http("PUT", url, data=b"\xff\x00", headers=binary)
            assert r.status_code == 200
            assert await ws.recv() == b"\xff\x00"
            r = await http("POST", url, data=b'{"n":1}', headers=bearer())
            assert r.status_code == 200
            assert await ws.recv() == '{"n":1}'
            r = await http("PUT", url, data=b"\xff\xfe", headers=bearer())
            assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")

    run(main())
    requests.get(gw.url(1) + "/status", timeout=5)
    gw.wait_log(r'"GET /status HTTP/1.1" 200')  # other requests keep their access log line...
    assert '"PUT /@connections/' not in gw.log()  # ...but not pushes (push_access_log = false)


def test_push_headers_that_are_not_utf8_are_read_not_a_500(gw, backend):
    s, buf, conn_id = raw_client(gw, backend)
    target = f"/@connections/{conn_id}"
    with socket.create_connection(("127.0.0.1", gw.port(1)), timeout=WAIT) as api:
        api.sendall(f"PUT {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n".encode()
                    + b"Content-Type: text/\xff\r\nContent-Length: 2\r\n\r\nhi"
                    + f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n".encode()
                    + b"Authorization: Bearer \xff\r\nConnection: close\r\n\r\nhi")
        answers = b""
        while chunk := api.recv(65536):
            answers += chunk
    assert answers.startswith(b"HTTP/1.1 200 ")  # a text push
    assert read_frame(s, buf)[::2] == (0x1, b"hi")
    assert b"HTTP/1.1 401 " in answers and answers.endswith(b'"Missing or invalid credentials"}')
    s.close()


def test_push_api_only_on_push_listener(gw, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}) as ws:
            conn_id = backend.connect_hook(cred).conn_id
            r = await http("PUT", gw.url(0) + "/@connections/" + conn_id, data=b"x", headers=bearer())
            assert r.status_code == 404
            r = await http("PUT", push_url(gw, conn_id), data=b"y", headers=bearer())
            assert r.status_code == 200
            assert await ws.recv() == "y"

    run(main())


def test_push_hmac_signatures(gw, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}) as ws:
            conn_id = backend.connect_hook(cred).conn_id
            url, path = push_url(gw, conn_id), f"/@connections/{conn_id}"
            r = await http("PUT", url + "?ignored=1", data=b"signed", headers=signed("PUT", path, b"signed"))
            assert r.status_code == 200
            assert await ws.recv() == "signed"
            stale = signed("PUT", path, b"old", ts=int(time.time()) - 600)
            assert (await http("PUT", url, data=b"old", headers=stale)).status_code == 401
            wrong = signed("PUT", path, b"x", key="not-the-secret")
            assert (await http("PUT", url, data=b"x", headers=wrong)).status_code == 401
            tampered = signed("PUT", path, b"body one")
            assert (await http("PUT", url, data=b"body two", headers=tampered)).status_code == 401
            r = await http("GET", url, headers=signed("GET", path, b""))
            assert r.status_code == 200

    run(main())


def test_get_info(gw, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred, "User-Agent": "gw-test/1"}) as ws:
            url = push_url(gw, backend.connect_hook(cred).conn_id)
            r = await http("GET", url, headers=bearer())
            assert r.status_code == 200
            info = r.json()
            assert set(info) == {"connectedAt", "identity", "lastActiveAt"}
            assert info["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "gw-test/1"}
            iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
            assert re.fullmatch(iso, info["connectedAt"]) and re.fullmatch(iso, info["lastActiveAt"])
            await ws.send("activity")
            await asyncio.to_thread(backend.wait, lambda hs: [h for h in hs if h.body == b"activity"])
            later = (await http("GET", url, headers=bearer())).json()
            assert later["lastActiveAt"] >= info["lastActiveAt"]
            assert later["connectedAt"] == info["connectedAt"]

    run(main())


def test_delete_closes_then_gone(gw, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}) as ws:
            conn_id = backend.connect_hook(cred).conn_id
            r = await http("DELETE", push_url(gw, conn_id), headers=bearer())
            assert (r.status_code, r.content) == (204, b"")
            assert await closed_code(ws) == (1000, "")
        return conn_id

    conn_id = run(main())
    backend.wait(lambda hs: [h for h in hs if h.conn_id == conn_id and h.method == "DELETE"], "DELETE hook")
    for method in ("PUT", "GET", "DELETE"):
        r = requests.request(method, push_url(gw, conn_id), data=b"x", headers=bearer(), timeout=5)
        assert r.status_code == 410
        assert r.headers["x-amzn-ErrorType"] == "GoneException"
        assert r.json() == {"code": "NOT_FOUND", "message": "The connection with the provided id no longer exists"}


def test_unknown_id_oversize_and_bad_method(gw, backend):
    r = requests.put(push_url(gw, str(uuid.uuid4())), data=b"x", headers=bearer(), timeout=5)
    assert r.status_code == 410
    cred = credential()

    async def main():
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}, max_size=None) as ws:
            url = push_url(gw, backend.connect_hook(cred).conn_id)
            r = await http("PUT", url, data=b"x" * (131072 + 1), headers=bearer())
            assert (r.status_code, r.json()["code"]) == (413, "MESSAGE_TOO_LONG")
            assert r.headers["x-amzn-ErrorType"] == "PayloadTooLargeException"
            r = await http("PATCH", url, data=b"x", headers=bearer())
            assert r.status_code == 405
            big = "b" * 100_000
            r = await http("PUT", url, data=big.encode(), headers=bearer())
            assert r.status_code == 200
            assert await ws.recv() == big

    run(main())


# -- size limits ---------------------------------------------------------------------------


def test_inbound_size_limits_close_1009(gw, backend):
    async def main():
        cred = credential()
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}, max_size=None) as ws:
            conn_id = backend.connect_hook(cred).conn_id
            await ws.send(iter([b"f" * 25_000] * 4))  # 100 KB in four 25 KB frames: accepted
            await asyncio.to_thread(backend.wait, lambda hs: [h for h in hs if h.conn_id == conn_id
                                                              and h.method == "PUT" and len(h.body) == 100_000])
            await ws.send("x" * 40_000)  # one 40 KB frame: over max_frame
            assert (await closed_code(ws))[0] == 1009
        cred = credential()
        async with connect(ws_url(gw), additional_headers={"Authorization": cred}, max_size=None) as ws:
            await ws.send(iter([b"f" * 25_000] * 8))  # 200 KB message: over max_message
            assert (await closed_code(ws))[0] == 1009
        return conn_id

    conn_id = run(main())
    backend.wait(lambda hs: [h for h in hs if h.conn_id == conn_id and h.method == "DELETE"], "DELETE hook")


# -- timers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gw_timers(backend, tmp_path_factory):
    config = gateway_config(backend.url, "idle_timeout = 2.5\nmax_duration = 5\ntimeout = 3000\n")
    fs = FreescoreProcess(config, tmp_path_factory.mktemp("gateway-timers")).start()
    yield fs
    fs.stop()


def test_idle_timeout_closes_1001_and_fires_close_hook(gw_timers, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw_timers), additional_headers={"Authorization": cred}) as ws:
            assert await closed_code(ws) == (1001, "Idle timeout")

    run(main())
    conn_id = backend.connect_hook(cred).conn_id
    backend.wait(lambda hs: [h for h in hs if h.conn_id == conn_id and h.method == "DELETE"], "DELETE hook")


def test_max_duration_closes_busy_connection(gw_timers, backend):
    cred = credential()

    async def main():
        async with connect(ws_url(gw_timers), additional_headers={"Authorization": cred}) as ws:
            async def chatter():
                while True:
                    await ws.send("busy")
                    await asyncio.sleep(0.3)

            task = asyncio.create_task(chatter())
            try:
                return await closed_code(ws)
            finally:
                task.cancel()

    assert run(main()) == (1001, "Max connection duration")


def test_liveness_drops_silent_peer(gw_timers):
    """A raw client that completes the handshake, then never reads or answers pings."""
    s = raw_handshake(gw_timers.port(0), "Authorization: silent\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    assert data.startswith(b"HTTP/1.1 101")
    try:
        while s.recv(4096):  # pings arrive and go unanswered; then the server drops us
            pass
    except ConnectionResetError:  # dropped with an abort (RST): as good as a FIN
        pass
    s.close()


# -- environment, shutdown ------------------------------------------------------------------


def test_environment_overrides_and_sigterm_sends_close_hooks(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("API_URI", f"127.0.0.1:{backend.port}/websocket")
    monkeypatch.setenv("WS_HOSTNAME", "gw.example:9/@connections")
    monkeypatch.setenv("WS_TIMEOUT", "120000")
    monkeypatch.setenv("LOG_LEVEL", "error")
    fs = FreescoreProcess(gateway_config("http://127.0.0.1:1/nowhere"), tmp_path).start()
    creds = [credential(), credential()]

    async def main():
        clients = [await connect(ws_url(fs), additional_headers={"Authorization": c}) for c in creds]
        hooks = [backend.connect_hook(c) for c in creds]
        for h in hooks:
            assert json.loads(h.body)["ws_uri"] == f"http://gw.example:9/@connections/{h.conn_id}"
            assert json.loads(h.body)["timeout"] == 120000
        await asyncio.to_thread(fs.stop)
        return [await closed_code(ws) for ws in clients], [h.conn_id for h in hooks]

    codes, ids = run(main())
    assert [c[0] for c in codes] == [1001, 1001]
    assert "gateway: clients on" not in fs.log()  # LOG_LEVEL=error hides the gateway's info lines
    for conn_id in ids:
        assert [h.method for h in backend.of(conn_id, "DELETE")] == ["DELETE"]


def test_open_push_api_on_public_listener_refuses_to_start(tmp_path):
    from harness import run_twistd

    config = tmp_path / "freescore.toml"
    config.write_text('[[listen]]\nendpoint = "tcp:0"\n\n[gateway]\napi_uri = "http://127.0.0.1:9/websocket"\n')
    result = run_twistd(config)
    assert result.returncode != 0
    assert "gateway.push_listen" in result.stdout + result.stderr

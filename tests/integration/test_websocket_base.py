"""The shared WebSocket base, driven through a test-only echo app in a real twistd."""

import asyncio
import base64
import json
import os
import socket
import struct
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness import FreescoreProcess, read_http_head

ECHO_TAC = Path(__file__).resolve().parent / "echo_app.tac"
PLAIN = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"
"""


@pytest.fixture
def echo(tmp_path):
    procs = []

    def start(**env):
        fs = FreescoreProcess(PLAIN, tmp_path, tac=ECHO_TAC, extra_env={k: str(v) for k, v in env.items()}).start()
        procs.append(fs)
        return fs

    yield start
    for fs in procs:
        fs.stop()


def upgrade_request(host_header: str = "127.0.0.1", path: str = "/echo", origin: str = "Espruino") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    ).encode()


def raw_handshake(port: int, host_header: str, path: str = "/echo", origin: str = "Espruino",
                  then: bytes = b"") -> socket.socket:
    """A raw client that sent its upgrade request, and `then` in the same write."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(upgrade_request(host_header, path, origin) + then)
    return sock


def masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    head = sock.recv(2)
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", sock.recv(2))
    payload = b""
    while len(payload) < length:
        payload += sock.recv(length - len(payload))
    return opcode, payload


def test_host_header_without_port_is_accepted_on_a_non_standard_port(echo):
    fs = echo()
    sock = raw_handshake(fs.port(), "127.0.0.1")
    try:
        head = read_http_head(sock)
        assert head.startswith(b"HTTP/1.1 101"), head
        sock.sendall(masked_frame(0x1, b"REGISTER"))
        assert read_frame(sock) == (0x1, b"REGISTER")
    finally:
        sock.close()


def test_any_pong_payload_keeps_the_connection_alive_and_silence_drops_it(echo):
    fs = echo(ECHO_KEEPALIVE=1.0)
    alive = raw_handshake(fs.port(), "127.0.0.1")
    silent = raw_handshake(fs.port(), "127.0.0.1")
    try:
        assert read_http_head(alive).startswith(b"HTTP/1.1 101")
        assert read_http_head(silent).startswith(b"HTTP/1.1 101")
        for _ in range(4):  # four keepalive rounds, each answered with a non-echo pong
            opcode, _payload = read_frame(alive)
            assert opcode == 0x9
            alive.sendall(masked_frame(0xA, b"pong"))
        alive.sendall(masked_frame(0x1, b"still here"))
        assert read_frame(alive) == (0x1, b"still here")
        # The silent peer gets one ping, answers nothing, and is dropped.
        assert read_frame(silent)[0] == 0x9
        silent.settimeout(10)
        try:
            while silent.recv(4096):
                pass
        except ConnectionResetError:
            pass  # the server aborts the dead peer's TCP connection
        fs.wait_log(r"answered no ping within 1.0s, dropping")
    finally:
        alive.close()
        silent.close()


def test_plain_http_on_a_websocket_path_gets_426(echo):
    fs = echo()
    r = requests.get(fs.url() + "/echo", timeout=5)
    assert r.status_code == 426
    assert "error" in r.json()


def test_oversize_message_closes_with_1009(echo):
    fs = echo(ECHO_MAX_MESSAGE=1024, ECHO_MAX_FRAME=1024)

    async def scenario():
        async with connect(fs.url(0, "ws") + "/echo", max_size=None) as ws:
            await ws.send("x" * 100)
            assert await ws.recv() == "x" * 100
            await ws.send("y" * 5000)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            return closed.value.rcvd.code

    assert asyncio.run(scenario()) == 1009
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


def test_connection_limit_refuses_with_503(echo):
    fs = echo(ECHO_MAX_CONNECTIONS=2)

    async def scenario():
        url = fs.url(0, "ws") + "/echo"
        async with connect(url), connect(url):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url):
                    pass
            return refused.value.response.status_code

    assert asyncio.run(scenario()) == 503


def test_stop_closes_websockets_with_1001_and_exits(echo):
    fs = echo()

    async def scenario():
        async with connect(fs.url(0, "ws") + "/echo") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            fs.signal(15)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code

    assert asyncio.run(scenario()) == 1001
    assert fs.proc.wait(10) in (0, -15)
    fs._reader.join(5)
    assert "closing 1 WebSocket connections (1001)" in fs.log()


def test_connection_open_and_close_are_logged_with_peer_and_path(echo):
    fs = echo()

    async def scenario():
        async with connect(fs.url(0, "ws") + "/echo?token=secret") as ws:
            await ws.send("x")
            await ws.recv()

    asyncio.run(scenario())
    fs.wait_log(r"echo: close tcp4?:127\.0\.0\.1:\d+ /echo code=1000")
    opened = fs.wait_log(r"echo: open tcp4?:127\.0\.0\.1:\d+ /echo")
    assert "secret" not in opened


def test_metrics_count_connections_and_messages(echo):
    fs = echo()

    def sample(name):
        text = requests.get(fs.url() + "/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + '{service="echo"}'):
                return float(line.split()[-1])
        raise AssertionError(f"{name} missing in:\n{text}")

    async def scenario():
        async with connect(fs.url(0, "ws") + "/echo") as ws:
            for i in range(3):
                await ws.send(str(i))
                await ws.recv()
            return await asyncio.to_thread(sample, "freescore_connections")

    assert asyncio.run(scenario()) == 1
    assert sample("freescore_messages_in_total") == 3
    assert sample("freescore_messages_out_total") == 3
    fs.wait_log(r"echo: close")
    assert sample("freescore_connections") == 0


# -- small text frames take a shorter path than Autobahn's parser ------------------------
# Property: whatever mix of frames, and however the bytes are cut into TCP
# segments, the server sees exactly the messages a compliant parser sees.


def any_masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + body


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_any_frame(sock: socket.socket) -> tuple[int, bytes]:
    b0, b1 = recv_exact(sock, 2)
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", recv_exact(sock, 2))
    return b0 & 0x0F, recv_exact(sock, length)


@pytest.fixture(scope="module")
def shared_echo(tmp_path_factory):
    fs = FreescoreProcess(PLAIN, tmp_path_factory.mktemp("echo"), tac=ECHO_TAC).start()
    yield fs
    fs.stop()


# Lengths around the 125/126-byte boundary of the short path, in 1-, 2- and 3-byte characters.
sized_text = st.builds(lambda n, c: c * n, st.integers(0, 130), st.sampled_from(["a", "é", "€"]))
message = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=140) | sized_text),
    st.tuples(st.just("binary"), st.binary(max_size=140)),
    st.tuples(st.just("ping"), st.binary(max_size=20)),
    st.tuples(st.just("fragmented"), st.text(min_size=2, max_size=60)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(message, min_size=1, max_size=12), cuts=st.lists(st.integers(1, 400), max_size=8))
def test_frames_in_any_mix_and_any_segmentation_arrive_as_sent(shared_echo, messages, cuts):
    stream = b""
    expected = []
    for kind, value in messages:
        if kind == "text":
            stream += any_masked_frame(0x1, value.encode())
            expected.append((0x1, value.encode()))
        elif kind == "binary":
            stream += any_masked_frame(0x2, value)
            expected.append((0x2, value))
        elif kind == "ping":
            stream += any_masked_frame(0x9, value)
            expected.append((0xA, value))
        else:  # a text message in two fragments, with a ping between them
            data = value.encode()
            stream += any_masked_frame(0x1, data[:1], fin=False) + any_masked_frame(0x9, b"in between")
            stream += any_masked_frame(0x0, data[1:])
            expected += [(0xA, b"in between"), (0x1, data)]
    sock = raw_handshake(shared_echo.port(), "127.0.0.1")
    try:
        assert read_http_head(sock).startswith(b"HTTP/1.1 101")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        at = 0
        for cut in sorted(set(cuts)):
            if at < cut < len(stream):
                sock.sendall(stream[at:cut])
                at = cut
        sock.sendall(stream[at:])
        got = [read_any_frame(sock) for _ in expected]
        assert got == expected
    finally:
        sock.close()


def test_invalid_utf8_in_a_small_text_frame_closes_with_1007(shared_echo):
    sock = raw_handshake(shared_echo.port(), "127.0.0.1")
    try:
        assert read_http_head(sock).startswith(b"HTTP/1.1 101")
        frames = [any_masked_frame(0x1, p) for p in (b"ok", b"bad \xff\xfe", b"x")]
        sock.sendall(b"".join(frames))
        assert read_any_frame(sock) == (0x1, b"ok")
        opcode, payload = read_any_frame(sock)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1007
    finally:
        sock.close()


def test_unmasked_small_text_frame_from_a_client_is_a_protocol_error(shared_echo):
    sock = raw_handshake(shared_echo.port(), "127.0.0.1")
    try:
        assert read_http_head(sock).startswith(b"HTTP/1.1 101")
        sock.sendall(b"\x81\x02hi")
        opcode, payload = read_any_frame(sock)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1002
    finally:
        sock.close()


def test_every_text_length_around_the_short_path_boundary_echoes_intact(shared_echo):
    payloads = [(c * n).encode() for c in ("a", "é", "€") for n in range(0, 131)]
    payloads = [p for p in payloads if len(p) <= 260]
    sock = raw_handshake(shared_echo.port(), "127.0.0.1")
    try:
        assert read_http_head(sock).startswith(b"HTTP/1.1 101")
        sock.sendall(b"".join(any_masked_frame(0x1, p) for p in payloads))  # many frames per read
        assert [read_any_frame(sock) for _ in payloads] == [(0x1, p) for p in payloads]
        for p in payloads[::7]:  # one frame per read
            sock.sendall(any_masked_frame(0x1, p))
            assert read_any_frame(sock) == (0x1, p)
    finally:
        sock.close()


# -- bytes a client sends before the 101 (RFC 6455 says it must wait; some do not) ---------


def read_head_only(sock: socket.socket) -> bytes:
    """The response head and not a byte more (frames may follow it in the same segment)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += recv_exact(sock, 1)
    return head


def test_frames_sent_with_the_upgrade_request_are_read_after_the_101(shared_echo):
    """In the same segment as the request: few (Twisted Web kept them) or many (it also stopped reading)."""
    for count in (1, 300):
        payloads = [f"early {i} ".encode() * 8 for i in range(count)]
        frames = b"".join(any_masked_frame(0x1, p) for p in payloads)
        sock = raw_handshake(shared_echo.port(), "127.0.0.1", then=frames)
        try:
            assert read_head_only(sock).startswith(b"HTTP/1.1 101")
            assert [read_any_frame(sock) for _ in payloads] == [(0x1, p) for p in payloads]
        finally:
            sock.close()


def test_bytes_sent_while_the_handshake_waits_are_frames_for_after_it_never_a_second_request(echo):
    fs = echo(ECHO_HANDSHAKE_DELAY=1.0)
    sock = raw_handshake(fs.port(), "127.0.0.1")
    try:
        blank_line = b"GET /echo HTTP/1.1\r\nHost: y\r\n\r\n"  # Autobahn parsed this as a second request
        sock.sendall(any_masked_frame(0x1, blank_line))
        assert read_head_only(sock).startswith(b"HTTP/1.1 101")
        assert read_any_frame(sock) == (0x1, blank_line)
    finally:
        sock.close()
    second = raw_handshake(fs.port(), "127.0.0.1")
    try:
        second.sendall(upgrade_request())
        assert read_head_only(second).startswith(b"HTTP/1.1 101")
        opcode, payload = read_any_frame(second)  # the second request's bytes are no frame: 1002
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1002
    finally:
        second.close()
    fs.wait_for(lambda: fs.log().count("echo: close") == 2, what="both closes")
    assert "Unhandled error" not in fs.log() and "AlreadyCalledError" not in fs.log()


def test_too_much_sent_while_the_handshake_waits_is_refused_400(echo):
    fs = echo(ECHO_HANDSHAKE_DELAY=60, ECHO_OPEN_TIMEOUT=120)
    sock = raw_handshake(fs.port(), "127.0.0.1")
    try:
        frame = any_masked_frame(0x1, b"x" * 1000)
        try:
            for _ in range(200):  # 200 kB: over the 64 KiB kept for after the 101
                sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_http_head(sock).startswith(b"HTTP/1.1 400")
    finally:
        sock.close()


def test_header_bytes_that_are_not_utf8_are_read_not_a_500(shared_echo):
    """Twisted decodes a header named by a str as UTF-8 and raised on `Origin: http://\xff`:
    a 500 page and a traceback instead of the handshake."""
    request = upgrade_request().replace(b"Origin: Espruino", b"Origin: http://\xff\xfe")
    sock = socket.create_connection(("127.0.0.1", shared_echo.port()), timeout=5)
    try:
        sock.sendall(request)
        assert read_head_only(sock).startswith(b"HTTP/1.1 101")  # allowed_origins ["*"] takes any
    finally:
        sock.close()
    request = upgrade_request().replace(b"Upgrade: websocket", b"Upgrade: websocket\xff")
    sock = socket.create_connection(("127.0.0.1", shared_echo.port()), timeout=5)
    try:
        sock.sendall(request)
        assert read_http_head(sock).startswith(b"HTTP/1.1 426")  # not an upgrade to websocket
    finally:
        sock.close()
    assert "UnicodeDecodeError" not in shared_echo.log()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_upgrade_request_with_a_body_is_400_and_its_body_is_never_read_as_frames(shared_echo, framing):
    """Twisted read the body as the request's; Autobahn then read it again, as the WebSocket's first
    frames (an echo of a message sent as HTTP body). A GET upgrade has no body: refused, not upgraded."""
    smuggled = any_masked_frame(0x1, b"smuggled")
    if framing == "chunked":
        head, body = b"Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    else:
        head, body = b"Content-Length: %d\r\n" % len(smuggled), smuggled
    request = upgrade_request().replace(b"\r\n\r\n", b"\r\n" + head + b"\r\n") + body
    sock = socket.create_connection(("127.0.0.1", shared_echo.port()), timeout=5)
    try:
        sock.sendall(request)
        head_lines = read_head_only(sock).lower()
        length = int(head_lines.split(b"content-length: ")[1].split(b"\r\n")[0])
        payload = recv_exact(sock, length)
    finally:
        sock.close()
    assert head_lines.startswith(b"http/1.1 400") and b"content-type: application/json" in head_lines
    assert json.loads(payload) == {"error": "a WebSocket upgrade request takes no body"}


def test_a_client_that_sends_and_never_reads_is_no_longer_read_until_it_does(shared_echo):
    """Its pongs and echoes piled up in the process without bound (a ping flood grew it ~10 MB/s).

    Now the server stops reading it while more than Twisted's write buffer (64 KiB) waits for it,
    and goes on, nothing lost, once it reads again.
    """
    ping, text = any_masked_frame(0x9, b"p" * 100), any_masked_frame(0x1, b"t" * 100)
    burst = (ping + text) * 500
    sock = raw_handshake(shared_echo.port(), "127.0.0.1")
    try:
        assert read_head_only(sock).startswith(b"HTTP/1.1 101")
        sock.settimeout(5)
        sent = 0
        while sent < 300_000_000:  # far more than the kernel's buffers: the process would hold it
            try:
                sock.sendall(burst)
            except TimeoutError:
                break  # the server stopped reading
            sent += len(burst)
        else:
            raise AssertionError("the server read 300 MB from a client that reads nothing")
        sock.settimeout(30)
        answered = sent // len(burst) * 500
        for _ in range(answered):  # then it reads: every pong and echo arrives, in order
            assert read_any_frame(sock) == (0xA, b"p" * 100)
            assert read_any_frame(sock) == (0x1, b"t" * 100)
    finally:
        sock.close()


def test_an_endless_message_of_empty_fragments_closes_with_1009(shared_echo):
    """Each empty continuation frame added to the message's fragment list and nothing to its size:
    a client streaming them grew the process without bound. Each counts a byte now (max_message 64 KiB)."""
    sock = raw_handshake(shared_echo.port(), "127.0.0.1")
    try:
        assert read_head_only(sock).startswith(b"HTTP/1.1 101")
        sock.sendall(any_masked_frame(0x1, b"", fin=False))
        try:
            sock.sendall(any_masked_frame(0x0, b"", fin=False) * 70_000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        opcode, payload = read_any_frame(sock)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009
    finally:
        sock.close()

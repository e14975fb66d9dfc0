"""Slow and silent clients against a real twistd: header deadline, idle keep-alive, open timeout (issue 12 item 1).

The timeouts are small (1 s headers, 3 s idle); every wait for a close is
generous and only bounds the test, it measures nothing.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import time
from pathlib import Path

import pytest
import requests
from websockets.asyncio.client import connect

from harness import FreescoreProcess
from tlsutil import ServerFiles, write_server_files

ECHO_TAC = Path(__file__).resolve().parent / "echo_app.tac"
GENEROUS = 20.0
HTTP = """
[http]
header_timeout = 1.0
idle_timeout = 3.0
"""
PLAIN = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"
""" + HTTP
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
UPGRADE_HEAD = (
    b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.fixture
def echo(tmp_path):
    procs: list[FreescoreProcess] = []

    def start(config: str = PLAIN, **env: object) -> FreescoreProcess:
        fs = FreescoreProcess(config, tmp_path, tac=ECHO_TAC, extra_env={k: str(v) for k, v in env.items()})
        procs.append(fs.start())
        return fs

    yield start
    for fs in procs:
        fs.stop()


def until_closed(sock: socket.socket, limit: float = GENEROUS, trickle: bytes = b"") -> bytes:
    """Everything the server sent until it closed; sends `trickle` every 0.2 s meanwhile. Fails if still open."""
    deadline = time.monotonic() + limit
    data = b""
    while time.monotonic() < deadline:
        try:
            if trickle:
                sock.sendall(trickle)
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return data
    raise AssertionError(f"still open after {limit}s; received {data!r}")


def still_open(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def tls_config(files: ServerFiles) -> str:
    """One TLS listener with the small HTTP timeouts; the [http] table comes last, for more keys."""
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"
certificate = "{files.certificate}"
private_key = "{files.private_key}"
""" + HTTP


def open_socket(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_trickled_request_headers_are_cut_off_at_the_deadline(echo):
    """One header byte every 0.2 s would reset an idle timeout forever; the deadline is absolute."""
    fs = echo()
    with open_socket(fs.port()) as sock:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nX-a: ")
        answer = until_closed(sock, trickle=b"a")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


@pytest.mark.parametrize("framing", [b"Content-Length: 100000", b"Transfer-Encoding: chunked"])
def test_trickled_request_body_is_cut_off_at_the_same_deadline(echo, framing):
    """Headers sent at once, then one body byte every 0.2 s: an idle timeout would never fire (slow POST)."""
    fs = echo()
    with open_socket(fs.port()) as sock:
        sock.sendall(b"POST /nope HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n")
        if b"chunked" in framing:
            sock.sendall(b"186a0\r\n")  # one chunk of 100000 bytes, trickled
        answer = until_closed(sock, trickle=b"a")
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


def test_pipelined_requests_whose_answers_are_not_read_stop_being_read_and_time_out(echo):
    """Twisted stopped reading a client that reads no answer only between requests, so pipelined
    requests were all read and answered into memory without end (about 8 kB kept a 1 kB request
    here). Now reading stops while the answers cannot be sent, and the idle timeout ends the
    connection: the client's writes fail once the kernel's buffers (a few MB) are full."""
    fs = echo()
    pipelined = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 990 + b"\r\n\r\n"
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads no answer; keeps little of them
        sock.settimeout(60)
        sock.connect(("127.0.0.1", fs.port()))
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            for _ in range(16):  # 16 MB: all read (and 130 MB of answers kept) only without backpressure
                sock.sendall(pipelined * 1000)
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


def test_half_sent_upgrade_gets_408_and_is_closed(echo):
    fs = echo()
    with open_socket(fs.port()) as sock:
        sock.sendall(UPGRADE_HEAD)
        answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    fs.wait_log("sent no complete request within 1.0s")  # the log is read by a thread: it may lag the close


def test_silent_connection_is_closed_without_an_answer(echo):
    fs = echo()
    with open_socket(fs.port()) as sock:
        assert until_closed(sock) == b""


def test_tls_handshake_never_started_or_left_half_done_is_dropped(tmp_path):
    files = write_server_files(tmp_path / "tls")
    with FreescoreProcess(tls_config(files), tmp_path) as fs:
        silent = open_socket(fs.port())
        partial = open_socket(fs.port())
        partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello's record header and first byte
        assert until_closed(silent) == b""
        until_closed(partial)
        silent.close()
        partial.close()
        assert requests.get(fs.url() + "/status", verify=str(files.ca_file), timeout=5).text == "OK"


def test_over_tls_a_408_or_413_closes_the_connection_with_it(tmp_path):
    """Both were followed by a close of the TLS transport, which waits while the HTTP channel is its
    producer: the connection stayed, a trickling client got a 408 a second until the abort 15 s on,
    and a 413 was followed by a 408, a second answer to one request."""
    files = write_server_files(tmp_path / "tls")
    # header_timeout 3 s: the TLS handshake and the first bytes must come within it on a busy machine
    config = tls_config(files).replace("header_timeout = 1.0", "header_timeout = 3.0")
    with FreescoreProcess(config + "max_body = 1024\n", tmp_path) as fs:
        with files.client_context().wrap_socket(open_socket(fs.port()), server_hostname="localhost") as tls:
            tls.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nX-a: ")
            assert until_closed(tls, trickle=b"a") == REQUEST_TIMEOUT
        with files.client_context().wrap_socket(open_socket(fs.port()), server_hostname="localhost") as tls:
            tls.sendall(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            answer = until_closed(tls)
        assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(b"larger than 1024 bytes\"}"), answer


def test_keep_alive_waits_for_idle_timeout_not_header_timeout_and_then_closes(echo):
    """Between requests the idle timeout governs; the header deadline starts with the next request's first byte."""
    fs = echo(PLAIN.replace("idle_timeout = 3.0", "idle_timeout = 12.0"))  # room for a stalled test process
    request = b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n"
    with open_socket(fs.port()) as sock:
        sock.sendall(request)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        time.sleep(2.0)  # longer than header_timeout (1 s), far shorter than idle_timeout
        assert still_open(sock)
        sock.sendall(request)
        second = sock.recv(65536)
        assert second.startswith(b"HTTP/1.1 200 "), second
        assert until_closed(sock) == b""


def test_websocket_and_normal_clients_outlive_every_http_timeout_while_slow_ones_are_cut(echo):
    fs = echo()
    slow = [open_socket(fs.port()) for _ in range(20)]
    for sock in slow:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")

    async def session() -> list[str]:
        async with connect(fs.url(scheme="ws") + "/echo", ping_interval=None) as ws:
            got = []
            for i in range(3):
                await ws.send(f"m{i}")
                got.append(await ws.recv())
                assert requests.get(fs.url() + "/status", timeout=5).text == "OK"
                await asyncio.sleep(2.0)  # 6 s in all: past header_timeout and idle_timeout
            return got

    assert asyncio.run(session()) == ["m0", "m1", "m2"]
    for sock in slow:
        until_closed(sock)
        sock.close()


def test_long_poll_in_flight_is_not_killed_by_the_idle_timeout(freescore):
    fs = freescore(
        """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[events]
channels_timeout = 5000
""" + HTTP.replace("idle_timeout = 3.0", "idle_timeout = 1.0")
    )
    r = requests.get(fs.url() + "/channels/contest", timeout=GENEROUS)
    assert r.status_code == 504  # the long-poll's own timeout answered, not a dropped connection


def test_open_timeout_counts_from_the_accept_not_the_upgrade(echo):
    """Headers trickled over 3 s, then a handshake that waits 3 s: past a 4 s open_timeout from the accept."""
    fs = echo(PLAIN.replace("header_timeout = 1.0", "header_timeout = 10.0"),
              ECHO_OPEN_TIMEOUT=4, ECHO_HANDSHAKE_DELAY=3)
    with open_socket(fs.port()) as sock:
        for line in UPGRADE_HEAD.split(b"\r\n")[:-1]:
            sock.sendall(line + b"\r\n")
            time.sleep(0.5)
        sock.sendall(b"\r\n")
        answer = until_closed(sock)
    assert not answer.startswith(b"HTTP/1.1 101"), answer

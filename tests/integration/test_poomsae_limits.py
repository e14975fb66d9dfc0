"""The FreeScore layer's slow-consumer bound (`max_unsent`), against a real `twistd freescore`.

A display that upgrades and then stops reading must not grow the server's memory until
the keepalive notices: once more than `max_unsent` bytes wait for it behind a broadcast it
is closed with 1013, and the ring's other displays still get every frame. The bound is the
common layer's, so two of the services show it (worldclass's judge, grassroots's ring computer).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "worldclass"))
from wc_client import Peer, config, copy_fixtures  # noqa: E402

sys.path.insert(0, str(HERE.parent / "grassroots"))
from gr_client import Rest, make_rings  # noqa: E402
from gr_client import config as grassroots_config  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from harness import read_http_head  # noqa: E402

pytestmark = pytest.mark.integration
LIMIT = 65536


def stalled_display(port: int, path: str) -> socket.socket:
    """A WebSocket display with a tiny receive buffer that upgrades and then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window stays small
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = read_http_head(sock)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def drain_until_closed(sock: socket.socket, timeout: float = 30.0) -> bytes:
    """Everything the server sent until it closed the connection (EOF or reset); fails after `timeout`."""
    got = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk
    raise AssertionError(f"the stalled display was not closed within {timeout}s ({len(got)} bytes read)")


def close_code(data: bytes) -> int | None:
    """The code of the close frame among the server's (unmasked) frames, None if none came."""
    i = 0
    while i + 2 <= len(data):
        opcode, n, i = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
        if n == 126:
            n, i = struct.unpack(">H", data[i:i + 2])[0], i + 2
        elif n == 127:
            n, i = struct.unpack(">Q", data[i:i + 8])[0], i + 8
        if opcode == 0x8 and n >= 2:
            return int(struct.unpack(">H", data[i:i + 2])[0])
        i += n
    return None


def worldclass(freescore, tmp_path):
    forms = copy_fixtures(tmp_path)
    div = forms / "ring01" / "div.p01.txt"
    # a long description makes every division frame ~100 kB, so the stalled socket fills quickly
    div.write_text(div.read_text().replace("# description=Male & Female Juniors",
                                           "# description=" + "Juniors " * 12500))
    return freescore(config(max_unsent=LIMIT)), "/worldclass/test/1/computer+operator", "/worldclass/test/1/judge0"


def grassroots(freescore, tmp_path):
    make_rings(tmp_path / "data")
    fs = freescore(grassroots_config(data=str(tmp_path / "data"), max_unsent=LIMIT))
    athletes = [f"Athlete {i} " + "x" * 400 for i in range(200)]  # ~100 kB a division frame
    Rest(fs.url(1)).post("/test/1/p01", {"name": "p01", "header": {"judges": 3}, "athletes": athletes})
    return fs, "/grassroots/test/1", "/grassroots/test/1"


def is_division_read(frame: dict) -> bool:
    return frame.get("action") == "update" and frame.get("request", {}).get("action") == "read" \
        and len(json.dumps(frame)) > 80000


@pytest.mark.parametrize("service", [worldclass, grassroots])
def test_a_display_that_stops_reading_is_closed_1013_and_the_others_get_every_frame(freescore, tmp_path, service):
    fs, display, judge_path = service(freescore, tmp_path)
    base = fs.url(0, "ws")

    async def scenario() -> None:
        displays = [await Peer.connect(base, display) for _ in range(2)]
        stalled = stalled_display(fs.port(), display)
        judge = await Peer.connect(base, judge_path)
        sent = 0
        while "closing (1013)" not in fs.log():
            assert sent < 500, "the stalled display was never closed"
            await judge.send({"type": "division", "action": "read"})
            sent += 1
            for peer in (*displays, judge):
                await peer.expect(is_division_read, what=f"read #{sent}")
        port = stalled.getsockname()[1]  # the log names the peer and the byte count
        fs.wait_log(rf":{port} has \d+ bytes unsent \(over max_unsent {LIMIT}\), closing \(1013\)")
        data = await asyncio.get_running_loop().run_in_executor(None, drain_until_closed, stalled)
        stalled.close()
        assert close_code(data) in (1013, None)  # the close frame, unless the close handshake timed out first
        # the ring goes on: the others still get each frame, in order, with nothing missing
        await judge.send({"type": "division", "action": "read"})
        for peer in displays:
            await peer.expect(is_division_read, what="the read after the close")
            assert len([f for f in peer.frames if is_division_read(f)]) == sent + 1
        for peer in (*displays, judge):
            await peer.close()

    asyncio.run(scenario())
    assert "Traceback" not in fs.log(), fs.log()

"""Paths and answers at WebSocket mounts (issue 12 item 7): 426 reason, sub-paths, fedmsg publish off."""

from __future__ import annotations

import base64
import os
import socket

import pytest
import requests

from harness import FreescoreProcess, read_http_head

CONFIG = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[clicker]
state = "state"

[fedmsg]

[events]
"""


@pytest.fixture(scope="module")
def fs(tmp_path_factory):
    proc = FreescoreProcess(CONFIG, tmp_path_factory.mktemp("paths")).start()
    yield proc
    proc.stop()


def upgrade(port: int, path: str) -> bytes:
    """The status line and headers a WebSocket upgrade to `path` gets."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        return read_http_head(sock)


def test_plain_request_to_a_websocket_path_is_426_upgrade_required(fs):
    with socket.create_connection(("127.0.0.1", fs.port()), timeout=5) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")


@pytest.mark.parametrize("path", ["/ws/xyz", "/fedmsg/xyz", "/event/xyz", "/socket.io/xyz/?EIO=4&transport=websocket"])
def test_upgrade_below_a_websocket_path_is_404(fs, path):
    assert upgrade(fs.port(), path).startswith(b"HTTP/1.1 404 ")


@pytest.mark.parametrize("path", ["/ws", "/fedmsg", "/event/", "/socket.io/?EIO=4&transport=websocket"])
def test_upgrade_at_the_websocket_path_is_accepted(fs, path):
    assert upgrade(fs.port(), path).startswith(b"HTTP/1.1 101 ")


def test_fedmsg_publish_without_a_token_says_publishing_is_off(fs):
    r = requests.post(fs.url() + "/fedmsg/publish", json={"topic": "t", "body": {}}, timeout=5)
    assert r.status_code == 404
    assert "publishing is off" in r.json()["error"]

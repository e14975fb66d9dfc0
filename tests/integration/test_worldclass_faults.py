"""worldclass under faults, on a real `twistd freescore`: failed writes, revoked sessions, unknown tournaments,
hostile JSON. Each must end in an error frame or a refusal, never a lost answer or a dead process."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worldclass"))
from wc_client import Peer, config, copy_fixtures, is_error, is_update, score, snapshot  # noqa: E402

from harness import metric, wait_metric  # noqa: E402

pytestmark = pytest.mark.integration

SAVE_ERROR = "Error while processing request: could not save the changes to tournament 'test': "


def start(freescore, tmp_path, **overrides):
    forms = copy_fixtures(tmp_path)
    return freescore(config(**overrides)), forms


class RawClient:
    """A bare-socket WebSocket client: several frames go out in ONE write, so the server reads them in one turn."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    @staticmethod
    def frame(obj: Any) -> bytes:
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
        return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def send_together(self, *objs: Any) -> None:
        self.sock.sendall(b"".join(self.frame(o) for o in objs))

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk

    def next(self) -> dict[str, Any]:
        """The next text message (server frames are unmasked and, here, unfragmented)."""
        while True:
            self._need(2)
            opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            start = 2
            if n == 126:
                self._need(4)
                n, start = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, start = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(start + n)
            payload, self.buf = self.buf[start:start + n], self.buf[start + n:]
            if opcode == 1:
                return json.loads(payload)
            assert opcode in (9, 10), f"unexpected opcode {opcode}"  # keepalive ping/pong

    def next_matching(self, predicate: Any) -> dict[str, Any]:
        while True:
            frame = self.next()
            if predicate(frame):
                return frame

    def close(self) -> None:
        self.sock.close()


# -- 1. a write that fails -------------------------------------------------------------

def test_failed_write_answers_every_requester_and_recovers(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path, scoreboard_delay=30.0)
    base = fs.url(0, "ws")
    blocker = forms / "ring01" / ".history"  # a file where the history folder goes: fails even as root

    async def scenario():
        judge = await Peer.connect(base, "/worldclass/test/1/judge1")
        obs = await Peer.connect(base, "/worldclass/test/1/observer")
        await obs.send({"type": "division", "action": "read"})
        first = await obs.expect(is_update("division", "read"))
        await judge.expect(is_update("division", "read"))
        before = snapshot(forms)
        blocker.write_text("in the way\n")
        # a batched score: the write fails at the group commit
        await judge.send(score(1, 0.3, 0.6, 1.5, 1.4, 1.3))
        err = await judge.expect(lambda f: "error" in f or f.get("type") == "division")
        assert is_error(err) and err["error"].startswith(SAVE_ERROR) and err["error"].endswith("\n")
        assert err["request"]["action"] == "score"
        # a change that writes at once (navigation) fails the same way
        await judge.send({"type": "division", "action": "athlete next"})
        err = await judge.expect(lambda f: "error" in f or f.get("type") == "division")
        assert is_error(err) and err["error"].startswith(SAVE_ERROR)
        # several requests in one read: a score and a bad request (which flushes the batch before
        # re-reading the disk): both requesters are answered, nothing is broadcast
        raw = RawClient(fs.port(), "/worldclass/test/1/judge2")
        raw.send_together(score(2, 0.3, 0.6, 1.5, 1.4, 1.3),
                          {"type": "division", "action": "score", "score": {"judge": 2, "major": "abc"}})
        answers = [raw.next_matching(lambda f: "error" in f or f.get("type") == "division") for _ in range(2)]
        assert all(is_error(a) for a in answers), answers
        assert any(a["error"].startswith(SAVE_ERROR) for a in answers), answers
        # the observer saw no score or navigation: its next division frame is its own read, unchanged
        await obs.send({"type": "division", "action": "read"})
        seen = await obs.expect(lambda f: f.get("type") == "division")
        assert seen["request"]["action"] == "read" and seen["digest"] == first["digest"]
        assert snapshot(forms) == {**before, "ring01/.history": b"in the way\n"}
        # the folder is writable again: the next score is saved and broadcast
        blocker.unlink()
        await judge.send(score(1, 0.3, 0.6, 1.5, 1.4, 1.3))
        scored = await obs.expect(is_update("division", "score"))
        assert scored["division"]["athletes"][0]["scores"]["prelim"]["forms"][0]["judge"][1]["major"] == 0.3
        assert "\tprelim\tf1\tj1\t0.3\t0.6\t1.5\t1.4\t1.3\n" in (forms / "ring01" / "div.p01.txt").read_text()
        raw.send_together({"type": "division", "action": "read"})
        reread = raw.next_matching(lambda f: is_update("division", "read")(f)  # this connection still works
                                   and f["request"]["from"]["role"] == "judge2")
        assert reread["division"]["athletes"][0]["scores"]["prelim"]["forms"][0]["judge"][1]["major"] == 0.3
        raw.close()
        await judge.close()
        await obs.close()

    asyncio.run(scenario())
    assert fs.proc.poll() is None
    assert requests.get(fs.url() + "/worldclass/status", timeout=5).text == "OK"


# -- 2. sessions are cached, yet a revoked session is seen -----------------------------------

def test_session_file_is_cached_but_a_change_is_seen(freescore, tmp_path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    sess = sessions / "sess_goodsession1"
    sess.write_bytes(b'is_auth|b:1;ring|s:1:"1";')
    fs, _ = start(freescore, tmp_path, sessions="sessions")

    async def read(peer: Peer) -> dict[str, Any]:
        await peer.send({"type": "division", "action": "read"})
        return await peer.expect(lambda f: "error" in f or f.get("type") == "division")

    async def scenario():
        ws = await websockets.connect(fs.url(0, "ws") + "/worldclass/test/1/judge2",
                                      additional_headers={"Cookie": "freescore-session=goodsession1"})
        peer = Peer(ws, "j2")
        assert (await read(peer))["type"] == "division"
        # same inode, size and mtime: the file is not read again (the cached answer stands)
        st = sess.stat()
        sess.write_bytes(b'is_auth|b:0;ring|s:1:"1";')
        os.utime(sess, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert (await read(peer))["type"] == "division"
        # the session file changed (mtime): revoked
        os.utime(sess, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        denied = await read(peer)
        assert denied["error"].startswith("Unauthorized user Judge 2 (")
        # logged in again (a different size), then logged out (file removed)
        sess.write_bytes(b'is_auth|b:1;ring|s:0:"";')
        assert (await read(peer))["type"] == "division"
        sess.unlink()
        assert "error" in await read(peer)
        await peer.close()

    asyncio.run(scenario())


# -- 3. tournaments: only existing folders, dropped from memory when idle -----------------------

def test_unknown_tournament_is_refused_and_nothing_is_created(freescore, tmp_path):
    fs, _ = start(freescore, tmp_path)
    base = fs.url(0, "ws")

    async def scenario():
        for db in ("nosuch", "Test"):
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                await websockets.connect(f"{base}/worldclass/{db}/1/computer+operator")
            assert info.value.response.status_code == 404
        peer = await Peer.connect(base, "/worldclass/test/1/observer")
        await peer.close()

    asyncio.run(scenario())
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["test"]


def test_create_tournaments_setting_allows_new_folders(freescore, tmp_path):
    fs, _ = start(freescore, tmp_path, create_tournaments=True)

    async def scenario():
        op = await Peer.connect(fs.url(0, "ws"), "/worldclass/fresh/1/computer+operator")
        await op.send({"type": "tournament", "action": "draws write", "draws": {"x": 1}})
        assert (await op.expect(is_update("ring")))["ring"]["draws"] == {"x": 1}
        await op.close()

    asyncio.run(scenario())
    assert json.loads((tmp_path / "data" / "fresh" / "forms-worldclass" / "draws.json").read_text()) == {"x": 1}


def test_tournament_model_is_dropped_when_its_last_connection_leaves(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path)
    base = fs.url(0, "ws")
    name = "freescore_worldclass_tournaments_loaded"

    async def scenario():
        a = await Peer.connect(base, "/worldclass/test/1/judge0")
        b = await Peer.connect(base, "/worldclass/test/2/observer")
        await a.send(score(0, 0.3, 0.6, 1.5, 1.4, 1.3))
        await a.expect(is_update("division", "score"))
        assert metric(fs, name) == 1
        await a.close()
        await b.send({"type": "division", "action": "read"})
        await b.expect(is_update("division", "read"))
        assert metric(fs, name) == 1  # ring 2 still uses it
        await b.close()
        wait_metric(fs, name, 0)
        # the disk is the truth: a new connection reloads the score
        c = await Peer.connect(base, "/worldclass/test/1/observer")
        await c.send({"type": "division", "action": "read"})
        frame = await c.expect(is_update("division", "read"))
        assert frame["division"]["athletes"][0]["scores"]["prelim"]["forms"][0]["judge"][0]["major"] == 0.3
        assert metric(fs, name) == 1
        await c.close()
        wait_metric(fs, name, 0)

    asyncio.run(scenario())


# -- 4. hostile JSON -----------------------------------------------------------------------

def test_deeply_nested_json_gets_an_error_and_the_connection_stays(freescore, tmp_path):
    fs, _ = start(freescore, tmp_path)

    async def scenario():
        peer = await Peer.connect(fs.url(0, "ws"), "/worldclass/test/1/judge1")
        for payload in ("[" * 100000, '{"a":' * 100000):
            await peer.send(payload)
            err = await peer.expect(lambda f: "error" in f)
            assert is_error(err) and err["error"].startswith("Invalid JSON")
        await peer.send({"type": "division", "action": "read"})
        assert (await peer.expect(is_update("division", "read")))["division"]["name"] == "p01"
        await peer.close()

    asyncio.run(scenario())
    assert fs.proc.poll() is None

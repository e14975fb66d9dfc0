"""socket.io-client 4.x in Node, driven as LQDOJ's browser code drives it (tests/js/browser.js)."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import socketio

from harness import FreescoreProcess

JS = Path(__file__).resolve().parent.parent / "js"
TOKEN = "node-test-token"
CONFIG = f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[events]
sender_token = "{TOKEN}"
"""

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "socket.io-client").is_dir(),
    reason="needs node and tests/js/node_modules (run .ci/needs-events.sh, i.e. `npm ci` in tests/js)",
)


class Browser:
    """One Node socket.io-client process; events arrive as JSON lines."""

    def __init__(self, url: str, channels: list[str], start: int = 0) -> None:
        self.proc = subprocess.Popen(
            ["node", str(JS / "browser.js"), url, ",".join(channels), str(start)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.events: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def next(self, ev: str, timeout: float = 10) -> dict:
        """The next `ev` event; bookkeeping events on the way are kept in `seen`, others fail."""
        for i, got in enumerate(self.seen):
            if got["ev"] == ev:
                return self.seen.pop(i)
        while True:
            try:
                got = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {ev} from the browser within {timeout}s; seen {self.seen}") from None
            if got["ev"] == ev:
                return got
            if got["ev"] not in ("status", "upgrade", "open", "connect"):
                raise AssertionError(f"expected {ev}, got {got}")
            self.seen.append(got)

    def command(self, **cmd) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command(op="exit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def fs(tmp_path_factory):
    proc = FreescoreProcess(CONFIG, tmp_path_factory.mktemp("events-node")).start()
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log()


@pytest.fixture
def poster(fs):
    client = socketio.Client(reconnection=False, request_timeout=0.5)
    client.connect(fs.url(), auth={"role": "sender", "token": TOKEN}, namespaces=["/"], wait_timeout=0.5)
    yield lambda channel, message: client.call("post", {"channel": channel, "message": message}, timeout=5)["id"]
    client.disconnect()


@pytest.fixture
def browsers():
    opened: list[Browser] = []

    def make(*args, **kw) -> Browser:
        b = Browser(*args, **kw)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


def test_polling_then_upgrade_then_messages(fs, poster, browsers):
    b = browsers(fs.url(), ["contest-1", "sub-2"])
    assert b.next("open")["transport"] == "polling"
    b.next("connect")
    assert b.next("upgrade")["transport"] == "websocket"
    ids = [poster("contest-1", {"n": 1}), poster("other", "skip"), poster("sub-2", {"n": 2})]
    first, second = b.next("message")["data"], b.next("message")["data"]
    assert first == {"id": ids[0], "channel": "contest-1", "message": {"n": 1}}
    assert second == {"id": ids[2], "channel": "sub-2", "message": {"n": 2}}


def test_reconnect_catches_up_exactly_the_missed_messages(fs, poster, browsers):
    b = browsers(fs.url(), ["room"])
    b.next("connect")
    b.next("upgrade")
    b.next("status")
    seen = poster("room", "before")
    assert b.next("message")["data"]["id"] == seen
    b.command(op="disconnect")
    b.next("disconnect")
    missed = [poster("room", f"missed-{i}") for i in range(3)]
    poster("elsewhere", "not for us")
    b.command(op="connect")
    assert b.next("connect")
    got = [b.next("message")["data"] for _ in missed]
    assert [m["id"] for m in got] == missed
    assert [m["message"] for m in got] == ["missed-0", "missed-1", "missed-2"]
    live = poster("room", "live")
    assert b.next("message")["data"] == {"id": live, "channel": "room", "message": "live"}


def test_browser_error_events_reach_socket_on_error(fs, browsers):
    b = browsers(fs.url(), ["x"])
    b.next("connect")
    b.command(op="emit", event="post", data={"channel": "x", "message": 1})
    assert b.next("error")["data"]["code"] == "unauthorized"
    b.command(op="filter", channels=[])
    assert b.next("error")["data"]["code"] == "invalid-filter"

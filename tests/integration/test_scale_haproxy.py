"""The etc/two-nodes example end to end: haproxy in front of two real nodes on one Redis.

Socket.IO browsers on the long-polling transport (python-socketio, cookies kept) are spread
over both nodes and stay on theirs; a post through haproxy reaches all of them once.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import requests
from scale_nodes import free_port, no_tracebacks, redis_server, start_nodes, wait_subscribed, wait_until  # noqa: F401

from harness import REPO

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed (apt-get install haproxy)"),
]
pytest.importorskip("freescore.events", reason="the events service is not in this tree")
from test_scale_events import TABLE, Browser, post, sender  # noqa: E402


@pytest.fixture
def haproxy(tmp_path):
    procs = []

    def start(port_a: int, port_b: int) -> str:
        port = free_port()
        text = (REPO / "etc" / "two-nodes" / "haproxy.cfg").read_text()
        text = text.replace("127.0.0.1:8081", f"127.0.0.1:{port_a}").replace("127.0.0.1:8082", f"127.0.0.1:{port_b}")
        text = text.replace("bind 127.0.0.1:8000", f"bind 127.0.0.1:{port}")
        text = re.sub(r"maxconn \d+", "maxconn 256", text)
        config = tmp_path / "haproxy.cfg"
        config.write_text(text)
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "haproxy exited"
            try:
                return requests.get(url + "/status", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(up, what="haproxy to answer")
        return url

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Front:
    """Looks like a node to the test helpers, but is haproxy's address."""

    def __init__(self, url: str) -> None:
        self._url = url

    def url(self, index: int = 0, scheme: str | None = None) -> str:
        return self._url


def test_polling_browsers_on_both_nodes_behind_haproxy(freescore, redis_server, haproxy):  # noqa: F811
    a, b = start_nodes(freescore, redis_server, {"node-a": TABLE, "node-b": TABLE})
    wait_subscribed(redis_server, "events:posts", 2)
    front = Front(haproxy(a.port(), b.port()))
    browsers = []
    try:
        for _ in range(4):
            browser = Browser(front, ["X"], transports=["polling"])
            browsers.append(browser)
        cookies = {br.client.eio.http.cookies.get("FSNODE") for br in browsers}
        assert cookies == {"a", "b"}, "roundrobin put browsers on both nodes, each pinned by its cookie"
        poster = sender(front)
        ids = [post(poster, "X", i) for i in range(5)]
        for browser in browsers:
            assert [m["id"] for m in browser.take(5)] == ids
        poster.disconnect()
    finally:
        for browser in browsers:
            browser.close()
    no_tracebacks(a, b)

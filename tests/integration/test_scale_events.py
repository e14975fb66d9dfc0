"""events across two real nodes on one Redis, with python-socketio (the Django poster's and a browser's client):
a post on node a reaches Socket.IO browsers on node b; ids increase across nodes; catch-up works from any node."""

from __future__ import annotations

import queue
import threading

import pytest
import socketio
from scale_nodes import no_tracebacks, redis_server, start_nodes, wait_subscribed  # noqa: F401

pytestmark = pytest.mark.integration
pytest.importorskip("freescore.events", reason="the events service is not in this tree")

TOKEN = "scale-token"
TABLE = f"""
[events]
sender_token = "{TOKEN}"
rate_limit = 0.0
sender_rate_limit = 0.0
"""
GUARD = 10


def sender(node) -> socketio.Client:
    client = socketio.Client(reconnection=False, request_timeout=5)
    client.connect(node.url(), auth={"role": "sender", "token": TOKEN}, namespaces=["/"], wait_timeout=5)
    return client


def post(client: socketio.Client, channel: str, message) -> int:
    answer = client.call("post", {"channel": channel, "message": message}, timeout=GUARD)
    assert answer["status"] == "success", answer
    return answer["id"]


class Browser:
    """A Socket.IO client subscribed to channels; every `message` event lands in a queue."""

    def __init__(self, node, channels: list[str], start: int | None = None, **connect) -> None:
        self.messages: queue.Queue[dict] = queue.Queue()
        self.statuses: queue.Queue[dict] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("message", self.messages.put)
        self.client.on("status", self.statuses.put)
        self.client.connect(node.url(), auth={"role": "client"}, namespaces=["/"], wait_timeout=5, **connect)
        if start is not None:
            self.client.emit("start-msg", {"start": start})
            assert self.statuses.get(timeout=GUARD) == {"status": "success"}
        self.client.emit("set-filter", {"filter": channels})
        assert self.statuses.get(timeout=GUARD) == {"status": "success"}

    def take(self, n: int) -> list[dict]:
        return [self.messages.get(timeout=GUARD) for _ in range(n)]

    def nothing_more(self, marker_sender: socketio.Client, channel: str) -> None:
        """A marker post on `channel` must be the next message (nothing else was pending)."""
        marker = post(marker_sender, channel, "marker")
        got = self.messages.get(timeout=GUARD)
        assert got["id"] == marker, got

    def close(self) -> None:
        self.client.disconnect()


def test_posts_cross_nodes_with_increasing_ids_and_catch_up_anywhere(freescore, redis_server):  # noqa: F811
    a, b = start_nodes(freescore, redis_server, {"node-a": TABLE, "node-b": TABLE})
    wait_subscribed(redis_server, "events:posts", 2)
    send_a, send_b = sender(a), sender(b)
    on_b = Browser(b, ["X"])
    on_a = Browser(a, ["X", "Y"])
    try:
        ids = []
        for i in range(20):
            client = send_a if i % 3 else send_b
            ids.append(post(client, "X" if i % 2 == 0 else "Y", {"n": i}))
        assert ids == sorted(set(ids)), "ids increase across nodes"
        got_b = on_b.take(10)
        assert [m["id"] for m in got_b] == ids[0::2] and {m["channel"] for m in got_b} == {"X"}
        assert [m["message"]["n"] for m in got_b] == list(range(0, 20, 2))
        got_a = on_a.take(20)
        assert sorted(m["id"] for m in got_a) == ids
        on_b.nothing_more(send_a, "X")
        on_a.take(1)
        last_seen = max(m["id"] for m in got_b)
        on_b.close()
        # missed while away, posted on both nodes; the browser comes back on the other node
        missed = [post(send_b if i % 2 else send_a, "X", {"missed": i}) for i in range(5)]
        back = Browser(a, ["X"], start=last_seen)
        caught = back.take(6)  # the marker posted above, then the five missed
        assert [m["id"] for m in caught][-5:] == missed
        back.nothing_more(send_b, "X")
        back.close()
        again = Browser(b, ["X"], start=missed[1])
        assert [m["id"] for m in again.take(3)] == missed[2:]
        again.close()
        on_a.close()
        # a concurrent burst from both nodes: every id once at a browser on each node
        now = post(send_a, "Z", "now")  # watchers start from here (no catch-up of earlier Y posts)
        watchers = [Browser(a, ["Y"], start=now), Browser(b, ["Y"], start=now)]
        burst: list[int] = []
        threads = [threading.Thread(target=lambda c=c: burst.extend(post(c, "Y", "burst") for _ in range(15)))
                   for c in (send_a, send_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(burst)) == len(burst) == 30
        for browser in watchers:
            assert sorted(m["id"] for m in browser.take(len(burst))) == sorted(burst)
            browser.close()
        # and catch-up of that burst from either node: all of it, once, in id order
        for node in (a, b):
            late = Browser(node, ["Y"], start=now)
            assert [m["id"] for m in late.take(len(burst))] == sorted(burst)
            late.close()
    finally:
        for client in (send_a, send_b):
            client.disconnect()
    no_tracebacks(a, b)

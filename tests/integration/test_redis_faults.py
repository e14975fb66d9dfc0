"""Two real gateway nodes on a real redis-server that misbehaves without going away: paused past
the reply timeout, a password changed at runtime, emptied by FLUSHALL, out of memory, a
connection silently dropped on the way (a firewall forgetting it). Each time
/status says so, a push is never answered 410 for a connection that is alive, and the nodes
recover by themselves once Redis is well again."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests
from redisproc import RedisServer
from scale_nodes import HUB, no_tracebacks, status, wait_until
from test_gateway import SECRET, TOKEN, Backend, bearer, credential
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.integration

GATEWAY = '\n[gateway]\napi_uri = "{api}"\npush_token = "{token}"\npush_hmac_secret = "{secret}"\n'
GUARD = 30.0


class Cluster:
    """Node a holds one gateway connection; pushes for it go through node b."""

    def __init__(self, freescore, server: RedisServer, url: str, url_a: str = "") -> None:
        self.backend = Backend()
        table = GATEWAY.format(api=self.backend.url, token=TOKEN, secret=SECRET)
        # A reply timeout that notices a paused Redis well within GUARD, yet long enough that a loaded
        # machine's slow reply is no outage (the FLUSHALL test asserts none). Heartbeats every 2 s
        # (presence_ttl / 3): the silent subscriber's check (3 beats and `timeout`) then comes seconds
        # after the silent command connection timed out and came back, so its warning is logged (one per
        # outage); with 0.67 s beats and `timeout` 3 the two raced.
        hub = HUB.replace("presence_ttl = 2", "presence_ttl = 6\ntimeout = 3")
        self.a, self.b = (freescore(hub.format(url=u, node=f"node-{n}") + table, f"node-{n}.toml")
                          for n, u in (("a", url_a or url), ("b", url)))
        for name, node in (("a", self.a), ("b", self.b)):
            node.wait_log(rf"redis hub: node node-{name} connected")
        cred = credential()
        self._stack = ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            ws_connect(self.a.url(0, "ws") + "/gateway", additional_headers={"Authorization": cred}))
        self.conn_id = self.backend.connect_hook(cred).conn_id
        self.pushed = 0

    def push(self) -> tuple[int, str]:
        """One push through node b: (status, code)."""
        self.pushed += 1
        r = requests.post(self.b.url() + "/@connections/" + self.conn_id, data=str(self.pushed).encode(),
                          headers=bearer(), timeout=GUARD)
        return r.status_code, r.json().get("code", "") if r.content else ""

    def delivered(self) -> bool:
        """A push through node b reaches the connection on node a."""
        if self.push()[0] != 200:
            return False
        while self.ws.recv(timeout=GUARD) != str(self.pushed):
            pass
        return True

    def statuses(self) -> tuple[int, int]:
        return status(self.a), status(self.b)

    def close(self) -> None:
        self._stack.close()
        self.backend.stop()


@pytest.fixture
def cluster(freescore, redis_server) -> Iterator[Cluster]:
    c = Cluster(freescore, redis_server, redis_server.url)
    try:
        wait_until(c.delivered, GUARD, "a push through node b to reach node a")  # its join may still be on the way
        yield c
    finally:
        c.close()


def authed(server: RedisServer, password: str, *command: str) -> bytes:
    """AUTH then one command on a raw connection; both replies (simple ones: +OK, :n, -ERR)."""
    raw = [("AUTH", password), command]
    payload = b"".join(f"*{len(c)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in c) for c in raw)
    with socket.create_connection(("127.0.0.1", server.port), timeout=GUARD) as s:
        s.sendall(payload)
        data = b""
        while data.count(b"\r\n") < 2:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    return data


def test_paused_redis_is_down_not_gone_and_recovers_after_a_timed_out_handshake(cluster, redis_server):
    """SIGSTOP: replies time out, and so does the handshake (SELECT) of every reconnection attempt;
    txredisapi gave up reconnecting after that, so the nodes stayed down after Redis resumed."""
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        # node b's presence lookup times out: that is no answer, not "no node holds it"
        assert cluster.push() == (503, "HUB_DOWN")
        wait_until(lambda: cluster.statuses() == (503, 503), GUARD, "both nodes to report the hub down")
        for node in (cluster.a, cluster.b):
            node.wait_log(r"could not set dbid=0: Not received Redis response", timeout=GUARD)
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    wait_until(lambda: cluster.statuses() == (200, 200), GUARD, "both nodes to reconnect")
    wait_until(cluster.delivered, GUARD, "a push through node b to reach node a again")
    no_tracebacks(cluster.a, cluster.b)


def test_password_changed_at_runtime_then_restored(freescore, redis_server):
    """A wrong password on reconnection is an outage like any other: retried with backoff, not for good."""
    assert authed(redis_server, "x", "CONFIG", "SET", "requirepass", "one").endswith(b"+OK\r\n")
    host = redis_server.url.split("//", 1)[1]
    c = Cluster(freescore, redis_server, f"redis://:one@{host}")
    try:
        wait_until(c.delivered, GUARD, "a push through node b to reach node a")  # its join may still be on the way
        assert authed(redis_server, "one", "CONFIG", "SET", "requirepass", "two").endswith(b"+OK\r\n")
        authed(redis_server, "two", "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        authed(redis_server, "two", "CLIENT", "KILL", "TYPE", "pubsub")
        wait_until(lambda: c.statuses() == (503, 503), GUARD, "both nodes to report the hub down")
        for node in (c.a, c.b):
            node.wait_log(r"could not auth: WRONGPASS", timeout=GUARD)
        assert c.push() == (503, "HUB_DOWN")
        assert authed(redis_server, "two", "CONFIG", "SET", "requirepass", "one").endswith(b"+OK\r\n")
        wait_until(lambda: c.statuses() == (200, 200), GUARD, "both nodes to reconnect")
        wait_until(c.delivered, GUARD, "a push through node b to reach node a again")
        no_tracebacks(c.a, c.b)
    finally:
        c.close()


def test_flushall_while_nodes_run_brings_presence_back_without_a_reconnection(cluster, redis_server):
    """The connections survive FLUSHALL, so nothing re-announced node a's members: node b answered 410
    for a live connection forever."""
    assert redis_server.command("FLUSHALL") == b"+OK\r\n"
    wait_until(cluster.delivered, GUARD, "a push through node b to reach node a again")
    cluster.a.wait_log(r"redis hub: node node-a's heartbeat was gone from Redis; announcing its presence again")
    assert "lost the connection" not in cluster.a.log() + cluster.b.log()
    no_tracebacks(cluster.a, cluster.b)


def test_redis_out_of_memory_is_reported_and_presence_comes_back(cluster, redis_server):
    """noeviction and maxmemory reached: heartbeats are refused, so the other nodes drop node a's members
    as crashed. /status said OK all along, the log had tracebacks, and the members never came back."""
    assert redis_server.command("CONFIG", "SET", "maxmemory", "1") == b"+OK\r\n"
    wait_until(lambda: cluster.statuses() == (503, 503), GUARD, "both nodes to report the hub down")
    cluster.a.wait_log(r"redis hub: Redis at redis://\S+ refuses writes", timeout=GUARD)
    cluster.a.wait_log(r"redis hub: heartbeat failed: OOM command not allowed", timeout=GUARD)
    assert redis_server.command("CONFIG", "SET", "maxmemory", "0") == b"+OK\r\n"
    wait_until(lambda: cluster.statuses() == (200, 200), GUARD, "both nodes to report the hub up")
    wait_until(cluster.delivered, GUARD, "a push through node b to reach node a again")
    no_tracebacks(cluster.a, cluster.b)


class BlackHole:
    """A TCP relay to Redis that can go silent on the connections it carries, as a firewall or NAT
    that forgot them does: nothing is forwarded any more and nothing is closed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.silenced: set[socket.socket] = set()
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if src not in self.silenced:
                    dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            sock.close()

    def silence(self) -> None:
        """Every connection open now goes silent; later ones are relayed."""
        self.silenced.update(self.sockets[1:])

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def test_subscriber_connection_dropped_silently_on_the_way_is_replaced(freescore, redis_server):
    """Node a's connections stop carrying anything, without a close. The command connection times out
    and reconnects; the subscriber has no reply to wait for, so node a said OK while pushes through
    node b never reached it (504) until it was restarted."""
    relay = BlackHole(redis_server.port)
    c = Cluster(freescore, redis_server, redis_server.url, url_a=relay.url)
    try:
        wait_until(c.delivered, GUARD, "a push through node b to reach node a")  # its join may still be on the way
        relay.silence()
        c.a.wait_log(r"redis hub: lost the connection to", timeout=GUARD)  # the command connection timed out
        wait_until(lambda: c.statuses() == (200, 200), GUARD, "node a to reconnect")
        wait_until(c.delivered, GUARD, "a push through node b to reach node a again")
        c.a.wait_log(r"redis hub: the subscriber connection to redis://\S+ stopped answering")
        no_tracebacks(c.a, c.b)
    finally:
        c.close()
        relay.close()

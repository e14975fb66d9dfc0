"""Two real `twistd -n freescore` nodes on one real redis-server, for the cross-node tests."""

from __future__ import annotations

import time

import requests
from redisproc import SKIP_REASON, RedisServer, find_redis_server, free_port  # noqa: E402, F401

HUB = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[hub]
backend = "redis"
url = "{url}"
node = "{node}"
retry_min = 0.05
retry_max = 0.3
presence_ttl = 2
"""


def start_nodes(freescore, server: RedisServer, tables: dict[str, str]):
    """Start one node per entry of `tables` (node name -> its protocol tables); wait until each joined Redis."""
    nodes = []
    for node, extra in tables.items():
        nodes.append(freescore(HUB.format(url=server.url, node=node) + extra, f"{node}.toml"))
    for node, proc in zip(tables, nodes, strict=True):
        proc.wait_log(rf"redis hub: node {node} connected")
    return nodes


def wait_until(predicate, timeout: float = 15, what: str = "condition"):
    """Poll (a failure guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def numsub(server: RedisServer, channel: str) -> int:
    """Redis Pub/Sub subscribers of a hub channel (one per node that subscribed it)."""
    reply = server.command("PUBSUB", "NUMSUB", f"freescore:0:c:{channel}") or b""
    return int(reply.split(b"\r\n")[-2].lstrip(b":")) if reply.startswith(b"*2") else -1


def wait_subscribed(server: RedisServer, channel: str, nodes: int) -> None:
    wait_until(lambda: numsub(server, channel) >= nodes, what=f"{nodes} nodes on hub channel {channel}")


def status(proc) -> int:
    return requests.get(proc.url() + "/status", timeout=5).status_code


def no_tracebacks(*procs) -> None:
    for proc in procs:
        assert "Traceback" not in proc.log(), proc.log()

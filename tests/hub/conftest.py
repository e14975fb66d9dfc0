"""Fixtures: a real redis-server, and hubs of either kind with the same behaviour under test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redisproc import SKIP_REASON, RedisServer, find_redis_server  # noqa: E402

from freescore.hub.memory import MemoryHub  # noqa: E402
from freescore.hub.redis import RedisHub  # noqa: E402


@pytest.fixture
def redis_server(tmp_path):
    binary = find_redis_server()
    if binary is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(binary, tmp_path / "redis").start()
    yield server
    server.kill()


@inlineCallbacks
def wait_until(predicate, timeout: float = 10, what: str = "condition"):
    """Poll (a failure guard, not a timing assertion)."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        yield task.deferLater(reactor, 0.01, lambda: None)


def now_ms() -> int:
    return int(reactor.seconds() * 1000)


class RedisHubs:
    """Starts RedisHubs ("nodes") against one server with short timers; stops them after the test."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.started: list[RedisHub] = []

    @inlineCallbacks
    def start(self, node: str = "n1", presence_ttl: float = 5.0, wait: bool = True):
        hub = RedisHub(self.server.url, now_ms(), reactor, node=node, presence_ttl=presence_ttl,
                       timeout=2.0, retry_min=0.05, retry_max=0.2)
        hub.startService()
        self.started.append(hub)
        if wait:
            yield wait_until(hub.is_up, what=f"{node} to connect")
        return hub

    def stop_all(self) -> None:
        for hub in self.started:
            if hub.running:
                pytest_twisted.blockon(hub.stopService())


@pytest.fixture
def redis_hubs(redis_server):
    hubs = RedisHubs(redis_server)
    yield hubs
    hubs.stop_all()


@pytest.fixture(params=["memory", "redis"])
def make_hub(request):
    """`yield make_hub(node)` -> a started hub of the parametrised kind."""
    if request.param == "memory":

        @inlineCallbacks
        def make(node: str = "n1"):
            yield None
            return MemoryHub(now_ms(), node)

        yield make
        return
    hubs = RedisHubs(request.getfixturevalue("redis_server"))
    yield hubs.start
    hubs.stop_all()

"""Helpers for hub tests in the reactor (pytest-twisted)."""

from __future__ import annotations

import pytest_twisted
from redisproc import RedisServer
from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks

from freescore.hub.redis import RedisHub


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


@inlineCallbacks
def listen(hub, channel):
    """Subscribe a list; wait until the hub confirmed the subscription (Redis)."""
    got = []
    sub = hub.subscribe(channel, got.append)
    yield getattr(sub, "ready", None)
    return got, sub


@inlineCallbacks
def barrier(hub, channel, got):
    """Publish a marker and wait for it: anything sent before has been delivered (or never will be)."""
    marker = yield hub.publish(channel, {"barrier": True})
    yield wait_until(lambda: marker in got, what="the barrier message")
    got.remove(marker)

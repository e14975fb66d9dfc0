"""Fixtures: a real redis-server, and hubs of either kind with the same behaviour under test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from twisted.internet.defer import inlineCallbacks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hubutil import RedisHubs, now_ms  # noqa: E402

from freescore.hub.memory import MemoryHub  # noqa: E402


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

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memnode import LISTEN, Node, autobahn_clock  # noqa: E402
from redisproc import SKIP_REASON, RedisServer, find_redis_server  # noqa: E402

from harness import FreescoreProcess  # noqa: E402


@pytest.fixture
def freescore(tmp_path):
    """Factory: `freescore(config_text)` starts a real process, stopped after the test."""
    procs: list[FreescoreProcess] = []

    def start(config_text: str, name: str = "freescore.toml") -> FreescoreProcess:
        proc = FreescoreProcess(config_text, tmp_path, name).start()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free loopback port (skips with the reason when none is found)."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(binary, tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def node_of(tmp_path):
    """Factory: `node_of(tables, *started)` builds freescore on a memory reactor (tests/memnode.py)
    with one loopback listener and these service tables, and starts the services named."""
    clocks = []

    def make(tables: str, *started: str) -> Node:
        node = Node(LISTEN + tables, tmp_path)
        clocks.append(autobahn_clock(node.clock))
        clocks[-1].__enter__()
        return node.start(*started)

    yield make
    for clock in reversed(clocks):
        clock.__exit__(None, None, None)

"""The collector policy in a real `twistd freescore`: thresholds, start-up freeze, full passes after closes."""

from __future__ import annotations

import re
from contextlib import ExitStack

import pytest
import requests
from websockets.sync.client import connect

pytestmark = pytest.mark.integration

CONFIG = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[clicker]
state = "state"

[runtime]
gc_thresholds = [200, 1, 100000]
gc_full_after_closes = 10
"""


def passes(url: str, generation: int = 2) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    m = re.search(rf'^freescore_gc_pause_seconds_count\{{generation="{generation}"\}} (\S+)$', text, re.M)
    assert m, "no freescore_gc_pause_seconds on /metrics"
    return float(m.group(1))


def open_connections(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    return float(re.search(r'^freescore_connections\{service="clicker"\} (\S+)$', text, re.M).group(1))


def listener(stack: ExitStack, ws_url: str):
    ws = stack.enter_context(connect(ws_url))
    ws.send("SUBSCRIBE 123456")
    assert ws.recv(timeout=10).startswith("CONNECT")
    return ws


def test_thresholds_freeze_and_a_full_pass_after_old_connections_close(freescore) -> None:
    fs = freescore(CONFIG)
    assert "gc thresholds (200, 1, 100000), full pass after 10 closes or every 600.0 s" in fs.log()
    fs.wait_log(r"gc froze \d+ start-up objects")
    frozen = int(re.search(r"gc froze (\d+) start-up objects", fs.log()).group(1))
    assert frozen > 10000  # modules, classes and functions of Twisted, Autobahn and freescore
    url = fs.url()
    ws_url = url.replace("http", "ws", 1) + "/ws"

    stack = ExitStack()
    held = [listener(stack, ws_url) for _ in range(10)]
    middle = passes(url, 1)
    fs.wait_for(lambda: passes(url, 1) > middle, what="a middle pass after the ten opened")  # /metrics allocates
    before = passes(url)
    for ws in held[:9]:
        ws.close()
    fs.wait_for(lambda: open_connections(url) == 1, what="the server to see nine closes")
    assert passes(url) == before  # 9 old closes, 1 open: not yet
    held[9].close()
    fs.wait_for(lambda: passes(url) > before, what="a full pass after the tenth old connection closed")
    stack.close()


def test_young_connections_bring_no_full_pass(freescore) -> None:
    """Closed before any middle pass promoted them: the next young pass frees them."""
    fs = freescore(CONFIG.replace("gc_thresholds = [200, 1, 100000]", "gc_thresholds = [1000000, 50, 100]"))
    url = fs.url()
    ws_url = url.replace("http", "ws", 1) + "/ws"
    before = passes(url)
    for _ in range(12):
        with ExitStack() as stack:
            listener(stack, ws_url)
    fs.wait_for(lambda: open_connections(url) == 0, what="the server to see the closes")
    assert passes(url) == before


def test_interpreter_defaults_when_asked(freescore) -> None:
    fs = freescore(CONFIG.replace("gc_thresholds = [200, 1, 100000]", "gc_thresholds = []\ngc_freeze = false"))
    text = requests.get(fs.url() + "/metrics", timeout=5).text
    assert "freescore_gc_pause_seconds_bucket" in text
    assert "gc thresholds (700, 10, 10)" in fs.log()
    assert "start-up objects" not in fs.log()

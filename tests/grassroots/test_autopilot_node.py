"""Grassroots's REST-armed autopilot on a memory node (tests/memnode.py): a manual move or a score
during a pause stops the rest of it for good. The whole freescore runs on a test clock advanced in
small steps past every step time, so "no step came" is a proof, not a wait; the real-process tests
(tests/integration/test_grassroots.py) play the same scenarios over real sockets.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import pytest
from memnode import Node, autobahn_clock

from tests.grassroots.gr_client import config, make_rings, upstream

REST = 1  # grassroots's own listener in `config`


@pytest.fixture
def ring4(tmp_path):
    """Factory: `ring4(times)` is (node, the division file of ring 4) with division p04 of `names` posted."""
    forms = make_rings(tmp_path / "data")
    with ExitStack() as stack:

        def make(times: tuple[float, ...], names: list[str]) -> tuple[Node, Any]:
            node = Node(config(times=times), tmp_path)
            stack.enter_context(autobahn_clock(node.clock))
            node.start("grassroots")
            rest(node, "POST", "/test/4/p04",
                 {"name": "p04", "header": {"judges": 3, "description": "Stale autopilot"}, "athletes": names})
            return node, forms / "ring04" / "div.p04.txt"

        yield make


def rest(node: Node, method: str, path: str, body: Any = None) -> None:
    """One REST call on grassroots's listener, answered 200 within the reactor turn."""
    data = b"" if body is None else json.dumps(body).encode()
    transport = node.connect(REST)
    transport.protocol.dataReceived(f"{method} {path} HTTP/1.1\r\nHost: node\r\nContent-Length: {len(data)}\r\n\r\n"
                                    .encode() + data)
    node.clock.advance(0)
    assert bytes(transport.value()).startswith(b"HTTP/1.1 200 "), bytes(transport.value())[:200]


def until(node: Node, file: Any, text: str, seconds: float = 5.0, step: float = 0.05) -> None:
    """Advance the test clock in `step`s until `file` holds `text`."""
    for _ in range(round(seconds / step)):
        if text in file.read_text():
            return
        node.clock.advance(step)
    raise AssertionError(f"{text!r} not written within {seconds}s of the test clock")


def test_manual_navigation_cancels_the_rest_of_the_autopilot(ring4):
    node, file = ring4((0.0, 0.3, 0.6, 0.9), ["Kim ASH", "Lou BAY", "Mo CAY"])
    for j, v in enumerate([80, 81, 82]):
        rest(node, "GET", f"/test/4/{j}/{v}")
    until(node, file, "# state=display\n")  # the leaderboard step; the next athlete's was due 0.3 s later
    rest(node, "GET", "/test/4/athlete/next")
    assert "# current=1\n" in file.read_text()
    node.quiet(60.0, [], [file])
    rest(node, "GET", "/test/4/0/77")
    text = file.read_text()
    assert "Lou BAY\t\t7.7\t-\t-\t-\t-\t-\n" in text and "# current=1\n" in text


def test_a_score_during_the_pause_is_never_wiped_by_the_last_step(ring4):
    node, file = ring4((0.0, 0.5, 0.5, 1.0), ["Kim ASH", "Lou BAY"])
    for j, v in enumerate([80, 81, 82]):
        rest(node, "GET", f"/test/4/{j}/{v}")
    until(node, file, "# current=1\n")  # the next-athlete step; the last one is due 0.5 s later
    rest(node, "GET", "/test/4/0/77")  # inside that pause: upstream's stale copy wiped it (ring04)
    assert file.read_text() == upstream("ring04/div.p04.1-next-athlete-scored-during-autopilot.txt")
    node.quiet(60.0, [], [file])
    rest(node, "GET", "/test/4/1/78")
    rest(node, "GET", "/test/4/2/79")
    until(node, file, "# state=display\n")  # Lou's own leaderboard step
    text = file.read_text()
    assert "Lou BAY\t\t7.7\t7.8\t7.9\t-\t-\t-\n" in text and "# placements=0,1\n" in text

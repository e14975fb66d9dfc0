"""Poll pacing in a real `twistd freescore`: on by default, counted on /metrics, off with 0."""

from __future__ import annotations

import re

import pytest
import requests
from websockets.sync.client import connect

from harness import LOOPBACK_ANY_PORT

pytestmark = pytest.mark.integration

CONFIG = f'[[listen]]\nendpoint = "{LOOPBACK_ANY_PORT}"\n\n[clicker]\nstate = "state"\n'


def paced(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    m = re.search(r"^freescore_reactor_paced_polls_total (\S+)$", text, re.M)
    assert m, "no freescore_reactor_paced_polls_total on /metrics"
    return float(m.group(1))


def score_round_trips(url: str, count: int) -> None:
    with connect(url.replace("http", "ws", 1) + "/ws") as ws:
        ws.send("REGISTER")
        assert ws.recv(timeout=10).startswith("REGISTERED ")
        for n in range(1, count + 1):
            ws.send(f"SCORE {n} {1000 + n} 7")
            assert ws.recv(timeout=10) == f"SCORED {n} {1000 + n}"


def test_default_is_on_and_a_busy_poll_paces_the_next(freescore) -> None:
    # batch_ready = 1: every poll that found a socket is busy, so pacing shows without a crowd
    fs = freescore(CONFIG + "\n[runtime]\nbatch_ready = 1\n")
    fs.wait_log(r"poll pacing: 0\.5 ms before polling again after a poll of 1 or more ready sockets")
    url = fs.url()
    before = paced(url)
    score_round_trips(url, 20)  # every answer still comes, in order
    assert paced(url) > before


def test_zero_turns_it_off(freescore) -> None:
    fs = freescore(CONFIG + "\n[runtime]\nbatch_pause = 0\nbatch_ready = 1\n")
    fs.wait_log(r"poll pacing off \(\[runtime\] batch_pause = 0\)")
    url = fs.url()
    score_round_trips(url, 20)
    assert paced(url) == 0


def test_a_crowd_under_the_default_pacing_gets_every_answer_in_order(freescore) -> None:
    """50 devices sending bursts: polls find many sockets ready and pace; nothing is lost or reordered."""
    import asyncio

    import websockets

    fs = freescore(CONFIG)
    ws_url = fs.url().replace("http", "ws", 1) + "/ws"

    async def answers_of(ws) -> list[str]:
        return [await asyncio.wait_for(ws.recv(), 10) for _ in range(20)]

    async def crowd() -> list[list[str]]:
        conns = [await websockets.connect(ws_url) for _ in range(50)]
        try:
            for ws in conns:
                await ws.send("REGISTER")
                assert (await asyncio.wait_for(ws.recv(), 10)).startswith("REGISTERED ")
            for n in range(1, 21):  # every device's SCORE n leaves before any answer is read
                await asyncio.gather(*(ws.send(f"SCORE {n} {5000 + n} 3") for ws in conns))
            return await asyncio.gather(*(answers_of(ws) for ws in conns))
        finally:
            await asyncio.gather(*(ws.close() for ws in conns))

    answers = asyncio.run(crowd())
    assert answers == [[f"SCORED {n} {5000 + n}" for n in range(1, 21)]] * 50

"""Poll pacing in a real `twistd freescore`: on by default, engaged by a crowd, counted on /metrics, off with 0."""

from __future__ import annotations

import asyncio
import re

import pytest
import requests
import websockets
from websockets.sync.client import connect

from harness import LOOPBACK_ANY_PORT

pytestmark = pytest.mark.integration

CONFIG = f'[[listen]]\nendpoint = "{LOOPBACK_ANY_PORT}"\n\n[clicker]\nstate = "state"\n'
LOW_RATE = "\n[runtime]\nbatch_ready = 1\nbatch_pause = 0.01\n"
"""Pace from 100 ready sockets a second: a crowd of a few hundred frames engages it on any machine."""


def paced(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    m = re.search(r"^freescore_reactor_paced_polls_total (\S+)$", text, re.M)
    assert m, "no freescore_reactor_paced_polls_total on /metrics"
    return float(m.group(1))


def crowd(ws_url: str, devices: int = 50, rounds: int = 20) -> list[list[str]]:
    """`devices` devices each send SCOREs 1..rounds, every round before any answer is read; their answers."""

    async def answers_of(ws) -> list[str]:
        return [await asyncio.wait_for(ws.recv(), 30) for _ in range(rounds)]

    async def run() -> list[list[str]]:
        conns = [await websockets.connect(ws_url) for _ in range(devices)]
        try:
            for ws in conns:
                await ws.send("REGISTER")
                assert (await asyncio.wait_for(ws.recv(), 30)).startswith("REGISTERED ")
            for n in range(1, rounds + 1):
                await asyncio.gather(*(ws.send(f"SCORE {n} {5000 + n} 3") for ws in conns))
            return await asyncio.gather(*(answers_of(ws) for ws in conns))
        finally:
            await asyncio.gather(*(ws.close() for ws in conns))

    return asyncio.run(run())


EXPECTED = [[f"SCORED {n} {5000 + n}" for n in range(1, 21)]] * 50


def test_default_is_on_and_a_lone_client_is_answered_at_once(freescore) -> None:
    fs = freescore(CONFIG)
    fs.wait_log(r"poll pacing: 0\.5 ms before each poll while polls find 8 or more ready sockets per 0\.5 ms")
    url = fs.url()
    with connect(url.replace("http", "ws", 1) + "/ws") as ws:
        ws.send("REGISTER")
        assert ws.recv(timeout=10).startswith("REGISTERED ")
        for n in range(1, 21):
            ws.send(f"SCORE {n} {1000 + n} 7")
            assert ws.recv(timeout=10) == f"SCORED {n} {1000 + n}"
    assert paced(url) == 0  # one client, one socket per poll: far below the rate that paces


def test_a_crowd_engages_pacing_and_gets_every_answer_in_order(freescore) -> None:
    fs = freescore(CONFIG + LOW_RATE)
    url = fs.url()
    assert crowd(url.replace("http", "ws", 1) + "/ws") == EXPECTED
    assert paced(url) > 0


def test_zero_turns_it_off(freescore) -> None:
    fs = freescore(CONFIG + LOW_RATE.replace("batch_pause = 0.01", "batch_pause = 0"))
    fs.wait_log(r"poll pacing off \(\[runtime\] batch_pause = 0\)")
    url = fs.url()
    assert crowd(url.replace("http", "ws", 1) + "/ws") == EXPECTED
    assert paced(url) == 0

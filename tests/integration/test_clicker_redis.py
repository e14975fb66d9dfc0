"""Two clicker nodes on one Redis: relays, presence and secrets cross nodes."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from scale_nodes import HUB

pytestmark = pytest.mark.integration

CONFIG = HUB + """
[clicker]
state = "state-{node}"
presence_check = 0.5
"""
GUARD = 10.0



def connect(proc):
    return websockets.connect(proc.url(0, "ws") + "/ws", proxy=None, ping_interval=None)


async def recv(ws) -> str:
    return await asyncio.wait_for(ws.recv(), GUARD)


async def watch(ws, verb: str, device_id: str) -> None:
    """SUBSCRIBE/LISTEN; the other node's CONNECT may come as the reply or just after a bare one."""
    await ws.send(f"{verb} {device_id}")
    first = await recv(ws)
    if first == "CONNECT":
        first = await recv(ws)
    assert first == f"CONNECT {device_id}"


def test_two_nodes_share_relays_presence_and_secrets(freescore, redis_server):
    a = freescore(CONFIG.format(url=redis_server.url, node="node-a"), "node-a.toml")
    b = freescore(CONFIG.format(url=redis_server.url, node="node-b"), "node-b.toml")
    for proc in (a, b):
        proc.wait_log(r"clicker: subscribed to hub channel clicker")
        proc.wait_log(r"clicker: device registry in the hub's shared store")

    async def scenario():
        async with connect(a) as dev_a, connect(b) as sub, connect(b) as lis:
            await dev_a.send("REGISTER")
            _, device_id, secret = (await recv(dev_a)).split(" ")
            await watch(sub, "SUBSCRIBE", device_id)
            await watch(lis, "LISTEN", device_id)
            await dev_a.send("SCORE 1 100 3")
            assert await recv(dev_a) == "SCORED 1 100"
            assert await recv(sub) == f"SCORE 100 3 {device_id}"
            assert await recv(lis) == f"SCORE 100 {device_id} 3"
            async with connect(b) as dev_b:
                await dev_b.send(f"REGISTER {secret}")
                assert await recv(dev_b) == f"REGISTERED {device_id} {secret}"  # the secret is known on node b
                await dev_a.close()  # b still holds the id: no DISCONNECT
                await dev_b.send("SCORE 2 200 4")
                assert await recv(dev_b) == "SCORED 2 200"
                assert await recv(sub) == f"SCORE 200 4 {device_id}"
                assert await recv(lis) == f"SCORE 200 {device_id} 4"
            assert await recv(sub) == f"DISCONNECT {device_id}"
            assert await recv(lis) == f"DISCONNECT {device_id}"

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_devices_of_a_crashed_node_are_disconnected_elsewhere(freescore, redis_server):
    a = freescore(CONFIG.format(url=redis_server.url, node="node-a"), "node-a.toml")
    b = freescore(CONFIG.format(url=redis_server.url, node="node-b"), "node-b.toml")
    for proc in (a, b):
        proc.wait_log(r"clicker: subscribed to hub channel clicker")

    async def scenario():
        dev = await connect(a).__aenter__()
        await dev.send("REGISTER")
        device_id = (await recv(dev)).split(" ")[1]
        async with connect(b) as sub:
            await watch(sub, "SUBSCRIBE", device_id)
            a.proc.kill()  # no "down" is ever published; presence expires after presence_ttl (2 s)
            assert await asyncio.wait_for(sub.recv(), 20) == f"DISCONNECT {device_id}"

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_hub_registry_over_the_address_budget_gets_no_reply_and_keeps_frame_order(freescore, redis_server):
    budget = "register_rate = 0.01\nregister_burst = 1\nregister_exempt = []\n"
    a = freescore(CONFIG.format(url=redis_server.url, node="node-a") + budget, "node-a.toml")

    async def scenario():
        async with connect(a) as dev:
            await dev.send("REGISTER")
            _, device_id, secret = (await recv(dev)).split(" ")
        async with connect(a) as dev:
            # refused, then the held SCORE is answered, then a known secret still registers
            await dev.send("REGISTER")
            await dev.send("SCORE 1 10 1")
            assert await recv(dev) == "SCORED 1 10"
            await dev.send(f"REGISTER {secret}")
            assert await recv(dev) == f"REGISTERED {device_id} {secret}"

    asyncio.run(asyncio.wait_for(scenario(), 60))
    a.wait_log(r"REGISTER for a new id from .* ignored: over its budget of new ids")

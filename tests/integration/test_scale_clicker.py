"""clicker across two real nodes on one Redis: presence, scores and the secret -> id registry are shared."""

from __future__ import annotations

import asyncio
import signal

import pytest
import websockets
from scale_nodes import no_tracebacks, start_nodes, wait_subscribed  # noqa: F401

pytestmark = pytest.mark.integration

TABLE = """
[clicker]
state = "{state}"
"""
GUARD = 10.0


def two_nodes(freescore, redis_server):
    a, b = start_nodes(freescore, redis_server, {
        "node-a": TABLE.format(state="state-a"), "node-b": TABLE.format(state="state-b"),
    })
    wait_subscribed(redis_server, "clicker", 2)
    return a, b


def connect(proc):
    return websockets.connect(proc.url(0, "ws") + "/ws", proxy=None, ping_interval=None)


async def recv(ws) -> str:
    return await asyncio.wait_for(ws.recv(), GUARD)


async def register(ws, secret: str = "") -> tuple[str, str]:
    await ws.send(f"REGISTER {secret}".rstrip())
    reply = (await recv(ws)).split(" ")
    assert reply[0] == "REGISTERED" and len(reply) == 3, reply
    return reply[1], reply[2]


async def watch(ws, device_id: str, expect: str) -> None:
    """SUBSCRIBE until the CONNECT reply says `expect` (presence reaches this node asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD
    while True:
        await ws.send(f"SUBSCRIBE {device_id}")
        if await recv(ws) == expect:
            return
        assert loop.time() < deadline, f"CONNECT reply never became {expect!r}"
        await asyncio.sleep(0.02)


def test_listener_on_b_sees_device_on_a_connect_score_disconnect(freescore, redis_server):
    a, b = two_nodes(freescore, redis_server)

    async def scenario():
        async with connect(a) as device:
            device_id, secret = await register(device)
        async with connect(b) as listener:
            await watch(listener, device_id, "CONNECT")  # the device on a is gone
            async with connect(a) as device:
                assert await register(device, secret) == (device_id, secret)
                # `watch` may leave a reply to a repeated SUBSCRIBE ("CONNECT") or the late
                # DISCONNECT of the first connection in flight: skip those, CONNECT <id> must follow.
                stale = ("CONNECT", f"DISCONNECT {device_id}")
                while (line := await recv(listener)) in stale:
                    pass
                assert line == f"CONNECT {device_id}"
                await device.send("SCORE 1 1000 5")
                assert await recv(device) == "SCORED 1 1000"
                await device.send("SCORE 1 1000 5")  # a retry: acknowledged, not relayed
                assert await recv(device) == "SCORED 1 1000"
                await device.send("SCORE 2 1001 6")
                assert await recv(device) == "SCORED 2 1001"
                assert await recv(listener) == f"SCORE 1000 5 {device_id}"
                assert await recv(listener) == f"SCORE 1001 6 {device_id}"
            assert await recv(listener) == f"DISCONNECT {device_id}"
            # LISTEN (draft-1 order) on b, device back on a: the CONNECT reply lists it once known
            async with connect(a) as device:
                await register(device, secret)
                assert await recv(listener) == f"CONNECT {device_id}"
                async with connect(b) as other:
                    await watch(other, device_id, f"CONNECT {device_id}")
                    await other.send(f"LISTEN {device_id}")
                    assert await recv(other) == f"CONNECT {device_id}"
                    await device.send("SCORE 3 1002 7")
                    assert await recv(other) == f"SCORE 1002 {device_id} 7"
                    assert await recv(listener) == f"SCORE 1002 7 {device_id}"
            assert await recv(listener) == f"DISCONNECT {device_id}"

    asyncio.run(asyncio.wait_for(scenario(), 60))
    no_tracebacks(a, b)


def test_secrets_and_ids_are_shared(freescore, redis_server):
    a, b = two_nodes(freescore, redis_server)

    async def scenario():
        async with connect(a) as device:
            id_a, secret_a = await register(device)
        async with connect(b) as device:  # a's secret on b: the same id
            assert await register(device, secret_a) == (id_a, secret_a)
        async with connect(b) as device:
            id_b, secret_b = await register(device)
        assert id_b != id_a
        async with connect(a) as device:
            assert await register(device, secret_b) == (id_b, secret_b)
        # many new devices on both nodes at once: every id distinct, each known on the other node
        async def fresh(node):
            async with connect(node) as ws:
                return await register(ws)

        made = await asyncio.gather(*(fresh(a if i % 2 else b) for i in range(40)))
        ids = [i for i, _ in made] + [id_a, id_b]
        assert len(set(ids)) == len(ids)
        for i, (device_id, secret) in enumerate(made[:6]):
            async with connect(b if i % 2 else a) as ws:
                assert await register(ws, secret) == (device_id, secret)
        # a secret nobody issued gets a fresh one, as on one node
        async with connect(b) as device:
            new_id, new_secret = await register(device, "not-a-known-secret")
            assert new_secret != "not-a-known-secret" and new_id not in ids
        return id_b, secret_b

    id_b, secret_b = asyncio.run(asyncio.wait_for(scenario(), 60))
    # the pairing is in Redis, set before REGISTERED went out
    assert redis_server.command("GET", f"freescore:kv:clicker:secret:{secret_b}") == f"$6\r\n{id_b}\r\n".encode()
    no_tracebacks(a, b)


def test_devices_of_a_crashed_node_disconnect_on_the_others(freescore, redis_server):
    table = TABLE + "presence_check = 0.3\n"
    a, b = start_nodes(freescore, redis_server, {
        "node-a": table.format(state="state-a"), "node-b": table.format(state="state-b"),
    })
    wait_subscribed(redis_server, "clicker", 2)

    async def scenario():
        async with connect(a) as device, connect(b) as listener:
            device_id, _ = await register(device)
            await watch(listener, device_id, f"CONNECT {device_id}")
            a.signal(signal.SIGKILL)  # no DISCONNECT published: presence expires (presence_ttl = 2)
            # `watch` may leave replies to its repeated SUBSCRIBEs in flight ("CONNECT <id>",
            # the same text as the connect event): skip those, the DISCONNECT must follow.
            while (line := await asyncio.wait_for(listener.recv(), 20)) != f"DISCONNECT {device_id}":
                assert line.startswith("CONNECT"), line
            await listener.send(f"SUBSCRIBE {device_id}")
            assert await recv(listener) == "CONNECT"

    asyncio.run(asyncio.wait_for(scenario(), 40))
    no_tracebacks(b)

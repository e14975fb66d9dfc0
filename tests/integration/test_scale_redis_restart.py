"""Redis killed and restarted (empty) while clicker scores flow across two nodes: no restart of the nodes needed."""

from __future__ import annotations

import asyncio

import pytest
import requests
import websockets
from scale_nodes import no_tracebacks, redis_server, start_nodes, status, wait_subscribed, wait_until  # noqa: F401

pytestmark = pytest.mark.integration

TABLE = """
[clicker]
state = "{state}"
"""
GUARD = 10.0


def connect(proc):
    return websockets.connect(proc.url(0, "ws") + "/ws", proxy=None, ping_interval=None)


async def recv(ws) -> str:
    return await asyncio.wait_for(ws.recv(), GUARD)


async def register(ws, secret: str = "") -> tuple[str, str]:
    await ws.send(f"REGISTER {secret}".rstrip())
    reply = (await recv(ws)).split(" ")
    assert reply[0] == "REGISTERED", reply
    return reply[1], reply[2]


async def scores(ws, into: list[int]) -> None:
    """Collect relayed score values until the connection closes."""
    try:
        async for line in ws:
            if line.startswith("SCORE "):
                into.append(int(line.split(" ")[2]))
    except websockets.ConnectionClosed:
        pass


def test_redis_restart_during_clicker_traffic(freescore, redis_server):  # noqa: F811
    a, b = start_nodes(freescore, redis_server, {"node-a": TABLE.format(state="state-a"),
                                                 "node-b": TABLE.format(state="state-b")})
    wait_subscribed(redis_server, "clicker", 2)

    async def scenario():
        async with connect(a) as device, connect(a) as local, connect(b) as remote:
            device_id, secret = await register(device)
            for listener in (local, remote):
                await listener.send(f"SUBSCRIBE {device_id}")
                assert (await recv(listener)).startswith("CONNECT")
            on_a: list[int] = []
            on_b: list[int] = []
            readers = [asyncio.create_task(scores(local, on_a)), asyncio.create_task(scores(remote, on_b))]
            sent = 0
            acked: list[int] = []

            async def send(n: int) -> None:
                nonlocal sent
                for _ in range(n):
                    sent += 1
                    await device.send(f"SCORE {sent} {1000 + sent} {sent}")
                    assert await recv(device) == f"SCORED {sent} {1000 + sent}"  # acknowledged, Redis or not
                    acked.append(sent)
                    await asyncio.sleep(0.002)

            async def traffic_until(condition) -> None:
                while not await asyncio.to_thread(condition):
                    await send(5)

            await send(20)
            await traffic_until(lambda: len(on_b) >= 20)
            redis_server.kill()
            await traffic_until(lambda: status(a) == 503 and status(b) == 503)
            mark = sent
            await send(20)  # served locally meanwhile
            await traffic_until(lambda: set(range(mark + 1, sent + 1)) <= set(on_a))
            redis_server.start()  # same port, no data
            await traffic_until(lambda: status(a) == 200 and status(b) == 200)
            await asyncio.to_thread(wait_subscribed, redis_server, "clicker", 2)
            mark = sent
            await traffic_until(lambda: any(v > mark for v in on_b))
            await send(20)
            last = sent
            await asyncio.to_thread(wait_until, lambda: last in on_b and last in on_a, GUARD, "the last score")
            # the pairing made before the restart is known on node b again (written back by node a)
            async with connect(b) as again:
                assert await register(again, secret) == (device_id, secret)
            for task in readers:
                task.cancel()
            return acked, on_a, on_b

    acked, on_a, on_b = asyncio.run(asyncio.wait_for(scenario(), 50))
    assert sorted(on_a) == acked, "node a's own listener got every score exactly once"
    assert len(on_b) == len(set(on_b)), "no score reached node b twice"
    assert on_b[-20:] == acked[-20:], "after the restart node b gets every score again, in order"
    assert a.proc.poll() is None and b.proc.poll() is None
    for node in (a, b):
        assert node.log().count("redis hub: lost the connection") == 1
    no_tracebacks(a, b)


def test_redis_restart_keeps_event_ids_increasing_and_gateway_presence(freescore, redis_server):  # noqa: F811
    """After an empty Redis comes back: event ids stay above every earlier id, posts cross nodes again,
    and a gateway connection held by node a is reachable from node b (presence re-announced)."""
    pytest.importorskip("freescore.events")
    pytest.importorskip("freescore.gateway")
    from test_gateway import SECRET, TOKEN, Backend, bearer, credential
    from test_scale_events import TABLE as EVENTS
    from test_scale_events import Browser, post, sender
    from websockets.sync.client import connect as ws_connect

    backend = Backend()
    gateway = f'\n[gateway]\napi_uri = "{backend.url}"\npush_token = "{TOKEN}"\npush_hmac_secret = "{SECRET}"\n'
    try:
        a, b = start_nodes(freescore, redis_server, {"node-a": EVENTS + gateway, "node-b": EVENTS + gateway})
        wait_subscribed(redis_server, "events:posts", 2)
        cred = credential()
        with ws_connect(a.url(0, "ws") + "/gateway", additional_headers={"Authorization": cred}) as conn:
            conn_id = backend.connect_hook(cred).conn_id
            send_a = sender(a)
            on_b = Browser(b, ["X"])
            before = [post(send_a, "X", i) for i in range(5)]
            assert [m["id"] for m in on_b.take(5)] == before
            redis_server.kill()
            wait_until(lambda: status(a) == 503 and status(b) == 503, what="both nodes to report the hub down")
            during = post(send_a, "X", "during")  # served by node a alone, with a node-local id
            r = requests.post(b.url() + "/@connections/" + conn_id, data=b"x", headers=bearer(), timeout=15)
            assert (r.status_code, r.json()["code"]) == (503, "HUB_DOWN"), "not 410: node a still holds it"
            r = requests.post(a.url() + "/@connections/" + conn_id, data=b"local", headers=bearer(), timeout=15)
            assert r.status_code == 200  # the holder serves it alone
            assert conn.recv(timeout=GUARD) == "local"
            redis_server.start()
            wait_until(lambda: status(a) == 200 and status(b) == 200, what="both nodes to recover")
            wait_subscribed(redis_server, "events:posts", 2)
            after = post(send_a, "X", "after")
            assert after > during > before[-1], "ids increase through the outage"
            got = on_b.messages.get(timeout=GUARD)
            assert got["id"] == after, got  # what node a posted alone did not reach node b
            send_b = sender(b)
            assert post(send_b, "X", "from b") > after
            send_b.disconnect()

            def pushed() -> bool:
                r = requests.post(b.url() + "/@connections/" + conn_id, data=b"back", headers=bearer(), timeout=15)
                return r.status_code == 200

            wait_until(pushed, what="node a's presence back in Redis")
            assert conn.recv(timeout=GUARD) == "back"
            send_a.disconnect()
            on_b.close()
        no_tracebacks(a, b)
    finally:
        backend.stop()

"""fedmsg across two real nodes on one Redis: HTTP publish on one node, ZeroMQ ingest on one node only."""

from __future__ import annotations

import asyncio
import json

import pytest
from scale_nodes import no_tracebacks, redis_server, start_nodes, wait_subscribed  # noqa: F401
from test_fedmsg import BODHI, SIGNED_BODY, TOKEN, Browser, envelope, http_sender, pub, zmq_sender  # noqa: F401

pytestmark = pytest.mark.integration

TABLE = """
[fedmsg]
publish_token = "{token}"
{extra}
"""
TOPIC = "org.example.build."


def fedmsg_nodes(freescore, redis_server, a_extra="", b_extra=""):  # noqa: F811
    a, b = start_nodes(freescore, redis_server, {
        "node-a": TABLE.format(token=TOKEN, extra=a_extra), "node-b": TABLE.format(token=TOKEN, extra=b_extra),
    })
    wait_subscribed(redis_server, "fedmsg:bus", 2)
    return a, b


def check_once_each(got: list[dict], expected: list[str]) -> None:
    assert [m["topic"] for m in got] == expected  # each exactly once, in publish order


def test_http_publish_on_a_reaches_browsers_on_b_once(freescore, redis_server):  # noqa: F811
    a, b = fedmsg_nodes(freescore, redis_server)
    publish_a, publish_b = http_sender(a.url()), http_sender(b.url())

    async def scenario():
        on_a = await Browser.open(a.url(0, "ws") + "/fedmsg", "a")
        on_b = await Browser.open(b.url(0, "ws") + "/fedmsg", "b")
        on_b2 = await Browser.open(b.url(0, "ws") + "/fedmsg", "b2")
        for browser in (on_a, on_b, on_b2):
            await browser.subscribe(TOPIC, TOPIC + "*", "org.example.")  # overlapping patterns: still once
            await browser.ready(publish_a)
        expected = [f"{TOPIC}{i}" for i in range(30)]
        answers = [publish_a(topic, json.dumps({"n": i}).encode()) for i, topic in enumerate(expected[:20])]
        assert all(answer["status"] == "ok" for answer in answers)
        for i, topic in enumerate(expected[20:]):  # and the other way round
            publish_b(topic, json.dumps({"n": 20 + i}).encode())
        for browser in (on_a, on_b, on_b2):
            got = await browser.collect(publish_a)
            check_once_each(got, expected)
            assert [m["body"]["n"] for m in got] == list(range(30))
            await browser.ws.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    no_tracebacks(a, b)


def test_zmq_ingest_on_one_node_delivers_once_on_both(freescore, redis_server, pub):  # noqa: F811
    endpoints = f'endpoints = ["tcp://127.0.0.1:{pub.port}"]'
    a, b = fedmsg_nodes(freescore, redis_server, endpoints, endpoints + "\nzmq_ingest = false")
    a.wait_log(r"fedmsg: ZeroMQ tcp://127\.0\.0\.1:\d+ connected")
    send = zmq_sender(pub.sock)

    async def scenario():
        browsers = [await Browser.open(node.url(0, "ws") + "/fedmsg", name) for node, name in ((a, "a"), (b, "b"))]
        for browser in browsers:
            await browser.subscribe("org.example.", BODHI)
            await browser.ready(send)
        expected = [f"{TOPIC}{i}" for i in range(50)]
        for i, topic in enumerate(expected):
            send(topic, envelope(topic, i))
        send(BODHI, SIGNED_BODY.encode())
        for browser in browsers:
            check_once_each(await browser.collect(send), [*expected, BODHI])
            assert SIGNED_BODY in browser.raw[-1]  # the signed envelope's text, byte for byte, on both nodes
            await browser.ws.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert "ZeroMQ SUB" in a.log() and "ZeroMQ SUB" not in b.log(), "node b must not read ZeroMQ"
    no_tracebacks(a, b)

"""Two gateway nodes on one real Redis: a push, GET or DELETE sent to the node that does
not hold the connection still reaches it; 410 only when no node holds it."""

from __future__ import annotations

import uuid

import pytest
import requests
from redisproc import SKIP_REASON, RedisServer, find_redis_server  # noqa: E402
from test_gateway import SECRET, TOKEN, Backend, bearer, closed_code, credential, http, run
from websockets.asyncio.client import connect

from harness import FreescoreProcess


def node_config(api_uri: str, redis_url: str, node: str) -> str:
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[hub]
backend = "redis"
url = "{redis_url}"
node = "{node}"

[gateway]
api_uri = "{api_uri}"
push_token = "{TOKEN}"
push_hmac_secret = "{SECRET}"
"""


@pytest.fixture
def two_nodes(tmp_path):
    binary = find_redis_server()
    if binary is None:
        pytest.skip(SKIP_REASON)
    redis = RedisServer(binary, tmp_path / "redis").start()
    backend = Backend()
    nodes = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            nodes.append(FreescoreProcess(node_config(backend.url, redis.url, name), tmp_path / name).start())
        for name, node in zip(("a", "b"), nodes, strict=True):
            # listening is not connected: until its hub is up a node answers 503 HUB_DOWN for ids it lacks
            node.wait_log(rf"redis hub: node {name} connected")
        yield backend, nodes[0], nodes[1]
    finally:
        for n in nodes:
            n.stop()
        backend.stop()
        redis.kill()


def test_push_get_delete_through_the_other_node(two_nodes):
    backend, a, b = two_nodes
    cred = credential()

    async def main():
        async with connect(a.url(0, "ws") + "/gateway", additional_headers={"Authorization": cred}) as ws:
            conn_id = backend.connect_hook(cred).conn_id
            via_b = b.url(0) + "/@connections/" + conn_id
            r = await http("PUT", via_b, data=b"from b", headers=bearer())
            assert (r.status_code, r.json()) == (200, {"code": "OK"})
            assert await ws.recv() == "from b"
            r = await http("POST", via_b, data=b"\x01\x02", headers={**bearer(), "Content-Type":
                                                                     "application/octet-stream"})
            assert r.status_code == 200
            assert await ws.recv() == b"\x01\x02"
            r = await http("GET", via_b, headers=bearer())
            assert r.status_code == 200
            assert r.json()["identity"]["sourceIp"] == "127.0.0.1"
            r = await http("DELETE", via_b, headers=bearer())
            assert r.status_code == 204
            assert await closed_code(ws) == (1000, "")
        return conn_id

    conn_id = run(main())
    backend.wait(lambda hs: [h for h in hs if h.conn_id == conn_id and h.method == "DELETE"], "DELETE hook")
    for node in (a, b):
        r = requests.put(node.url(0) + "/@connections/" + conn_id, data=b"x", headers=bearer(), timeout=5)
        assert r.status_code == 410
    r = requests.get(b.url(0) + "/@connections/" + str(uuid.uuid4()), headers=bearer(), timeout=5)
    assert r.status_code == 410

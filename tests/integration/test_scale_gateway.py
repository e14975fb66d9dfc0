"""gateway across two real nodes on one Redis: pushes, GET and DELETE from either node reach the holder;
410 only when no node holds the connection, also after the holder crashed."""

from __future__ import annotations

import signal

import pytest
import requests
from scale_nodes import no_tracebacks, redis_server, start_nodes, wait_subscribed, wait_until  # noqa: F401

pytest.importorskip("freescore.gateway", reason="the gateway service is not in this tree")
from test_gateway import SECRET, TOKEN, Backend, bearer, closed_code, credential, http, run  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

pytestmark = pytest.mark.integration


def table(api_uri: str) -> str:
    return f"""
[gateway]
api_uri = "{api_uri}"
push_token = "{TOKEN}"
push_hmac_secret = "{SECRET}"
"""


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.stop()


def test_push_get_close_from_any_node_and_410_after_the_holder_crashed(freescore, redis_server, backend):  # noqa: F811
    a, b = start_nodes(freescore, redis_server, {"node-a": table(backend.url), "node-b": table(backend.url)})
    for node in ("node-a", "node-b"):
        wait_subscribed(redis_server, f"gateway.node.{node}", 1)
        wait_subscribed(redis_server, f"gateway.reply.{node}", 1)

    def at(node, conn_id: str) -> str:
        return node.url(0) + "/@connections/" + conn_id

    async def main():
        cred_a, cred_b = credential(), credential()
        async with connect(a.url(0, "ws") + "/gateway", additional_headers={"Authorization": cred_a}) as on_a, \
                connect(b.url(0, "ws") + "/gateway", additional_headers={"Authorization": cred_b}) as on_b:
            id_a, id_b = backend.connect_hook(cred_a).conn_id, backend.connect_hook(cred_b).conn_id
            for ws, conn_id in ((on_a, id_a), (on_b, id_b)):
                for i, node in enumerate((a, b, a, b)):
                    r = await http("POST", at(node, conn_id), data=f"m{i}".encode(), headers=bearer())
                    assert (r.status_code, r.json()) == (200, {"code": "OK"}), r.text
                for i in range(4):
                    assert await ws.recv() == f"m{i}"  # once each, in order, whichever node took the push
                infos = [(await http("GET", at(node, conn_id), headers=bearer())) for node in (a, b)]
                assert [r.status_code for r in infos] == [200, 200]
                assert infos[0].json()["connectedAt"] == infos[1].json()["connectedAt"]
            r = await http("DELETE", at(b, id_a), headers=bearer())
            assert r.status_code == 204
            assert await closed_code(on_a) == (1000, "")
            for node in (a, b):
                r = await http("POST", at(node, id_a), data=b"late", headers=bearer())
                assert r.status_code == 410
            # node b crashes: its connection is held by nobody once its presence expires (presence_ttl = 2)
            b.signal(signal.SIGKILL)
            b.proc.wait(10)

            def gone() -> bool:
                r = requests.post(at(a, id_b), data=b"x", headers=bearer(), timeout=15)
                assert r.status_code in (410, 504), r.text  # 504: b did not answer, its presence not expired yet
                return r.status_code == 410

            wait_until(gone, 20, "node b's connection to be gone")
        return id_b

    run(main())
    no_tracebacks(a)

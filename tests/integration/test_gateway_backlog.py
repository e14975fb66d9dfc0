"""`max_backlog` in a real `twistd freescore`: all connections' messages waiting for a hanging backend
are bounded together; the client whose message crosses the bound is closed 1013, the others go on."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from harness import metric, wait_metric
from hookbackend import Backend

BACKLOG = "freescore_gateway_backlog_bytes"
ERRORS = "freescore_protocol_errors_total"
WAIT = 30.0


def config(api_uri: str) -> str:
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[gateway]
api_uri = "{api_uri}"
hook_timeout = 29000
max_message = 16384
max_backlog = 65536
"""


def message(client: str, i: int, size: int) -> bytes:
    return f"{client}{i}".encode().ljust(size, b".")


def test_the_message_crossing_max_backlog_closes_its_connection_and_the_others_keep_theirs(freescore):
    backend = Backend(hold=True)  # every PUT waits for release()
    try:
        fs = freescore(config(backend.url))
        url = fs.url(0, "ws") + "/gateway"
        sent: dict[str, list[bytes]] = {"a": [], "b": [], "c": []}

        async def send(ws, client: str, size: int) -> None:
            payload = message(client, len(sent[client]), size)
            await ws.send(payload)
            sent[client].append(payload)

        async def wait_backlog(value: int) -> None:
            await asyncio.to_thread(wait_metric, fs, BACKLOG, value, WAIT)

        async def main() -> tuple[int | None, str | None]:
            headers = {c: {"Authorization": f"cred-{c}"} for c in sent}
            async with connect(url, additional_headers=headers["a"]) as a, \
                    connect(url, additional_headers=headers["b"]) as b, \
                    connect(url, additional_headers=headers["c"]) as c:
                await wait_backlog(0)
                for _ in range(3):  # 30000 bytes each, far under the per-connection 256 / 8 MiB
                    await send(a, "a", 10000)
                await wait_backlog(30000)
                for _ in range(3):
                    await send(b, "b", 10000)
                await wait_backlog(60000)
                await send(c, "c", 5000)
                await wait_backlog(65000)
                await c.send(message("c", 1, 5000))  # 70000 > 65536: c crosses the bound
                try:
                    await asyncio.wait_for(c.recv(), WAIT)
                    raise AssertionError("c got a message instead of a close")
                except ConnectionClosed as e:
                    closed = (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, None)
                assert metric(fs, BACKLOG) == 65000  # c's first message is still waiting
                await asyncio.wait_for(a.ping(), WAIT)  # a and b stay open
                await asyncio.wait_for(b.ping(), WAIT)
                backend.release()
                await wait_backlog(0)
                await send(a, "a", 10000)  # room again: a goes on
                await asyncio.to_thread(backend.wait, lambda hs: sum(h[3] == sent["a"][-1] for h in hs), "a's last")
            return closed

        closed = asyncio.run(asyncio.wait_for(main(), 90))
        backend.wait(lambda hs: sum(h[0] == "DELETE" for h in hs) == 3, "three DELETE hooks")
    finally:
        backend.stop()

    assert closed == (1013, "Backend too slow")
    ids = {h[2]: h[1] for h in backend.hooks if h[0] == "POST"}
    for client, payloads in sent.items():
        mine = [h for h in backend.hooks if h[1] == ids[f"cred-{client}"]]
        assert [h[0] for h in mine] == ["POST"] + ["PUT"] * len(payloads) + ["DELETE"]
        assert [h[3] for h in mine if h[0] == "PUT"] == payloads  # all of them, in order
    wait_metric(fs, BACKLOG, 0, WAIT)
    assert metric(fs, ERRORS) == 1  # the 1013, counted as the per-connection one is
    line = fs.wait_log("backend too slow")
    assert ids["cred-c"] in line and "a message of 5000 bytes refused" in line
    assert "65000 bytes waiting for all connections (max_backlog 65536)" in line
    assert fs.log().count("backend too slow") == 1


def test_a_put_that_fails_or_times_out_leaves_the_backlog(freescore):
    backend = Backend(mode="drop", hold=True)  # `drop` is closed unanswered; every other PUT hangs
    try:
        fs = freescore(config(backend.url).replace("hook_timeout = 29000", "hook_timeout = 2000"))

        async def main() -> None:
            async with connect(fs.url(0, "ws") + "/gateway") as ws:
                await ws.send(b"drop")
                await ws.send(b"x" * 10000)
                await asyncio.to_thread(wait_metric, fs, 'freescore_gateway_hooks_total{hook="PUT",outcome="timeout"}',
                                        1, WAIT)
                assert metric(fs, 'freescore_gateway_hooks_total{hook="PUT",outcome="error"}') == 1
                await asyncio.to_thread(wait_metric, fs, BACKLOG, 0, WAIT)  # with the client still there

        asyncio.run(asyncio.wait_for(main(), 90))
        backend.wait(lambda hs: backend.count("DELETE") == 1, "the DELETE hook")
    finally:
        backend.stop()
    assert metric(fs, BACKLOG) == 0

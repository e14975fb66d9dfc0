"""The gateway against backends that close their keep-alive connections, or never end an answer.

Real `http.server` backends on loopback, a real `twistd freescore` and ten
`websockets` clients: whatever the backend does with its connections (HTTP/1.0
and a close after each answer, an idle timeout, a close after every third
request, said or unsaid, a close as the next request comes in), every message
reaches it exactly once and in order per client. An answer whose body never
ends is read no further than the hook needs and its connection is closed.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from harness import FreescoreProcess
from hookbackend import Backend

CLIENTS = 10
MESSAGES = 100  # per client: 1 000 in all
RETRY_LINE = "sending it again on a new connection"


def config(api_uri: str, hook_timeout: int = 5000) -> str:
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[gateway]
api_uri = "{api_uri}"
hook_timeout = {hook_timeout}
"""


async def clients(url: str, backend: Backend) -> list[str]:
    """Ten clients send half their messages, pause past the idle close, send the rest."""
    creds = [f"client{i}-{uuid.uuid4().hex}" for i in range(CLIENTS)]
    socks = [await connect(url, additional_headers={"Authorization": c}) for c in creds]
    half = MESSAGES // 2
    for part, (start, stop) in enumerate(((0, half), (half, MESSAGES))):
        await asyncio.gather(*(send(ws, i, start, stop) for i, ws in enumerate(socks)))
        await asyncio.to_thread(backend.wait, lambda hs, n=stop: sum(h[0] == "PUT" for h in hs) >= CLIENTS * n,
                                f"{CLIENTS * stop} PUTs")
        if part == 0:
            await asyncio.sleep(1.2)  # the idle backend closes every connection meanwhile
    for ws in socks:
        await ws.close()
    return creds


async def send(ws, client: int, start: int, stop: int) -> None:
    for j in range(start, stop):
        await ws.send(f"client {client} message {j}")


@pytest.mark.parametrize("mode", ["http10", "idle", "third", "third-announced", "race"])
def test_every_message_reaches_a_closing_backend_once_in_order(tmp_path, mode):
    backend = Backend(mode)
    fs = FreescoreProcess(config(backend.url), tmp_path).start()
    try:
        creds = asyncio.run(asyncio.wait_for(clients(fs.url(0, "ws") + "/gateway", backend), 120))
        backend.wait(lambda hs: sum(h[0] == "DELETE" for h in hs) >= CLIENTS, "the DELETE hooks")
    finally:
        fs.stop()
        backend.stop()
    assert backend.count("POST") == CLIENTS and backend.count("DELETE") == CLIENTS
    for i, cred in enumerate(creds):
        conn_id = next(h[1] for h in backend.hooks if h[0] == "POST" and h[2] == cred)
        puts = [h[3].decode() for h in backend.hooks if h[0] == "PUT" and h[1] == conn_id]
        assert puts == [f"client {i} message {j}" for j in range(MESSAGES)]
    log = fs.log()
    assert not re.search(r"hook for \S+ (failed|gave up)", log), log
    if mode in ("http10", "third-announced"):
        assert RETRY_LINE not in log  # retired after the answer that said so: never reused
    if mode == "race":
        assert RETRY_LINE in log


def test_a_hook_dropped_again_on_a_new_connection_is_logged_and_not_sent_a_third_time(tmp_path):
    backend = Backend("drop")
    fs = FreescoreProcess(config(backend.url), tmp_path).start()

    async def main() -> None:
        async with connect(fs.url(0, "ws") + "/gateway") as ws:
            await ws.send("drop")  # on the connect hook's connection, then on a new one
            await ws.send("after")
            await asyncio.to_thread(backend.wait, lambda hs: backend.count("PUT"), "the PUT after")

    try:
        asyncio.run(asyncio.wait_for(main(), 60))
        line = fs.wait_log(r"message hook for \S+ failed")
    finally:
        fs.stop()
        backend.stop()
    assert backend.dropped == 2
    assert [h[3] for h in backend.hooks if h[0] == "PUT"] == [b"after"]
    assert RETRY_LINE in fs.log()
    assert "no answer on a reused connection" in line and "nor on a new one" in line, line


@pytest.mark.parametrize("drip, hook_timeout, status, code",
                         [(False, 29000, 502, "BACKEND_ERROR"), (True, 1000, 504, "BACKEND_TIMEOUT")])
def test_a_connect_answer_that_never_ends_refuses_the_client_and_its_connection_is_closed(tmp_path, drip,
                                                                                         hook_timeout, status, code):
    """A flood is cut at the 64 KiB the decision reads (502; the timeout is only a guard there, so a slow
    machine cannot turn it into a 504); a trickle never reaches 64 KiB and ends at the hook timeout (504)."""
    backend = Backend(endless="POST", drip=drip)
    fs = FreescoreProcess(config(backend.url, hook_timeout=hook_timeout), tmp_path).start()

    async def main() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(fs.url(0, "ws") + "/gateway", open_timeout=30):
                pass
        return refused.value

    try:
        refused = asyncio.run(asyncio.wait_for(main(), 60))
        backend.wait(lambda hs: backend.cut == 1, "the gateway to close the endless answer's connection")
    finally:
        fs.stop()
        backend.stop()
    assert (refused.response.status_code, json.loads(refused.response.body)) == (status, {"code": code})


def test_a_message_answer_that_never_ends_is_closed_at_the_hook_timeout_and_the_next_message_goes(tmp_path):
    backend = Backend(endless="PUT")
    fs = FreescoreProcess(config(backend.url, hook_timeout=1000), tmp_path).start()

    async def main() -> None:
        async with connect(fs.url(0, "ws") + "/gateway") as ws:
            await ws.send("first")
            await ws.send("second")
            await asyncio.to_thread(backend.wait, lambda hs: backend.cut == 2, "both endless answers closed")

    try:
        asyncio.run(asyncio.wait_for(main(), 60))
        fs.wait_log(r"message hook for \S+ failed: timeout")
    finally:
        fs.stop()
        backend.stop()
    assert [h[3] for h in backend.hooks if h[0] == "PUT"] == [b"first", b"second"]

"""The gateway's size limits in a real `twistd freescore`: pushes over `[http] max_body`, messages over 8 MiB."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from websockets.asyncio.client import connect

from harness import raw_request
from hookbackend import Backend

TOKEN = "push-token-limits"


def config(api_uri: str, extra: str = "") -> str:
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[http]
max_body = 2048

[gateway]
api_uri = "{api_uri}"
push_token = "{TOKEN}"
{extra}
"""


def answer(port: int, head: str, chunks: list[bytes] = ()) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the answer to a raw request."""
    head_part, _, body = raw_request(port, head.encode(), chunks).partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("framing", ["announced", "chunked"])
def test_push_over_max_body_gets_the_documented_413(freescore, framing):
    fs = freescore(config("http://127.0.0.1:9/websocket"))
    target = f"/@connections/{uuid.uuid4()}"
    auth = f"Authorization: Bearer {TOKEN}\r\n"
    head = f"PUT {target} HTTP/1.1\r\nHost: x\r\n{auth}"
    if framing == "announced":
        status, headers, body = answer(fs.port(), head + "Content-Length: 100000\r\n\r\n")
    else:
        chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
        status, headers, body = answer(fs.port(), head + "Transfer-Encoding: chunked\r\n\r\n", [chunk] * 64)
    assert status == 413
    assert headers["x-amzn-errortype"] == "PayloadTooLargeException"
    assert json.loads(body) == {"code": "MESSAGE_TOO_LONG", "message": "Message is over 2048 bytes"}
    # Elsewhere the generic answer stays.
    status, _, body = answer(fs.port(), "POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    assert (status, json.loads(body)) == (413, {"error": "request body larger than 2048 bytes"})


def test_a_message_over_8_mib_within_max_message_reaches_the_backend(freescore):
    backend = Backend()
    size = 9 * 1024 * 1024
    try:
        fs = freescore(config(backend.url, f"max_message = {16 * 1024 * 1024}\nmax_frame = {16 * 1024 * 1024}\n"))

        async def main() -> None:
            async with connect(fs.url(0, "ws") + "/gateway", max_size=None) as ws:
                await ws.send(b"x" * size)
                await ws.send(b"after")
                await asyncio.to_thread(backend.wait, lambda hs: backend.count("PUT") == 2, "both PUTs")

        asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        backend.stop()
    assert [len(h[3]) for h in backend.hooks if h[0] == "PUT"] == [size, 5]
    assert "backend too slow" not in fs.log()

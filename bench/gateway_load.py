"""Load generator for the webhook gateway, on loopback only; writes bench/reports/gateway.md.

Processes: a real `twistd freescore` running the gateway; a backend (aiohttp
server for the hooks plus an aiohttp client pushing through the push API);
two client processes holding the WebSockets (`websockets` library).

- push -> receive: the backend stamps each push with its wall time; the
  client that receives it takes the difference.
- client -> backend PUT: the client stamps each message; the backend takes
  the difference when the PUT hook arrives.

Usage: python3 bench/gateway_load.py [--clients 2000] [--push-rate 2000]
       [--send-rate 1000] [--duration 15] [--warmup 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gcstats import describe, snapshot  # bench/ is the script's folder, so on sys.path
from loadkit import add_batch_pause_option, cpu_seconds, runtime_keys

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "bench" / "reports" / "gateway.md"
TOKEN = "bench-token"
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99, max in milliseconds."""
    if not values:
        return (float("nan"),) * 3
    values = sorted(values)

    def at(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    return at(0.50), at(0.99), values[-1] * 1000


# -- backend process: a minimal asyncio HTTP/1.1 server for the hooks -------------------------------
# Hand-written rather than aiohttp so the load generator is not the bottleneck on 2 shared cores.

OK_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"code\":\"OK\"}"


def parse_head(buf: bytearray) -> tuple[int, str, int] | None:
    """(head length incl. CRLFCRLF, first line, content-length) of a complete head, else None."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    lines = bytes(buf[:i]).decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return i + 4, lines[0], length


def backend_main(port_q: mp.Queue, ctl: mp.Queue, out: mp.Queue) -> None:
    raise_nofile()
    asyncio.run(_backend(port_q, ctl, out))


async def _backend(port_q: mp.Queue, ctl: mp.Queue, out: mp.Queue) -> None:
    import json

    ws_uris: list[str] = []
    put_latency: list[float] = []
    counts = {"POST": 0, "PUT": 0, "DELETE": 0}
    window = [float("inf"), 0.0]

    class Hooks(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = bytearray()

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                head = parse_head(self.buf)
                if head is None or len(self.buf) < head[0] + head[2]:
                    return
                size, line, length = head
                body = bytes(self.buf[size:size + length])
                del self.buf[:size + length]
                now = time.time()
                method = line.split(" ", 1)[0]
                counts[method] = counts.get(method, 0) + 1
                if method == "POST":
                    ws_uris.append(json.loads(body)["ws_uri"])
                elif method == "PUT":
                    try:
                        t = float(body.split(b" ", 1)[0])
                    except ValueError:
                        t = 0.0
                    if window[0] <= t <= window[1]:
                        put_latency.append(now - t)
                self.transport.write(OK_REPLY)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Hooks, "127.0.0.1", 0, backlog=4096)
    port_q.put(server.sockets[0].getsockname()[1])
    while True:
        msg = await loop.run_in_executor(None, ctl.get)
        if msg == "uris":
            out.put(list(ws_uris))
        elif msg == "report":
            out.put({"put_latency": put_latency, "hooks": dict(counts)})
        elif msg == "finish":
            out.put({"hooks_final": dict(counts)})
            break
        else:
            window[:] = [msg[0] + msg[2], msg[0] + msg[1]]
    server.close()


# -- pusher process: the backend's side of the push API, raw HTTP/1.1 keep-alive -----------------------


def pusher_main(uris: list[str], rate: int, when: tuple[float, float, float], out: mp.Queue) -> None:
    raise_nofile()
    asyncio.run(_pusher(uris, rate, when, out))


async def _pusher(uris: list[str], rate: int, when: tuple[float, float, float], out: mp.Queue) -> None:
    from urllib.parse import urlsplit

    start, duration, warmup = when
    window = (start + warmup, start + duration)
    first = urlsplit(uris[0])
    host, port = first.hostname, first.port
    paths = [urlsplit(u).path for u in uris]
    latency: list[float] = []
    statuses: dict[int, int] = {}
    idle: list[Pusher] = []
    backlog: list[tuple[str, float, int]] = []
    skipped = 0

    class Pusher(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = bytearray()
            self.sent_at = 0.0
            idle.append(self)

        def send(self, path: str, t: float, seq: int) -> None:
            body = f"{t:.6f} p{seq}".encode()
            self.sent_at = t
            self.transport.write(  # type: ignore[attr-defined]
                f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )

        def data_received(self, data: bytes) -> None:
            self.buf += data
            head = parse_head(self.buf)
            if head is None or len(self.buf) < head[0] + head[2]:
                return
            del self.buf[:head[0] + head[2]]
            status = int(head[1].split(" ", 2)[1])
            statuses[status] = statuses.get(status, 0) + 1
            if window[0] <= self.sent_at <= window[1]:
                latency.append(time.time() - self.sent_at)
            if backlog:
                self.send(*backlog.pop(0))
            else:
                idle.append(self)

    loop = asyncio.get_running_loop()
    for _ in range(64):
        await loop.create_connection(Pusher, host, port)
    await asyncio.sleep(max(0.0, start - time.time()))
    seq = 0
    tick = 0.005
    next_at = start
    while time.time() < start + duration:
        due = int((time.time() - start) * rate) - seq
        for _ in range(max(0, due)):
            item = (paths[seq % len(paths)], time.time(), seq)
            seq += 1
            if idle:
                idle.pop().send(*item)
            elif len(backlog) < 1000:
                backlog.append(item)
            else:
                skipped += 1
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - time.time()))
    await asyncio.sleep(2)
    out.put({"push_http": latency, "pushes": seq, "dropped": skipped, "statuses": statuses})


# -- client process --------------------------------------------------------------------------------


def clients_main(url: str, n: int, send_rate: float, ctl: mp.Queue, out: mp.Queue) -> None:
    raise_nofile()
    asyncio.run(_clients(url, n, send_rate, ctl, out))


async def _clients(url: str, n: int, send_rate: float, ctl: mp.Queue, out: mp.Queue) -> None:
    from websockets.asyncio.client import connect

    latency: list[float] = []
    received = 0
    window = [float("inf"), 0.0]
    conns = []
    sem = asyncio.Semaphore(100)

    async def open_one() -> None:
        async with sem:
            conns.append(await connect(url, compression=None, open_timeout=60, max_size=None, ping_interval=None))

    async def reader(ws) -> None:
        nonlocal received
        try:
            async for msg in ws:
                now = time.time()
                received += 1
                t = float(msg.split(" " if isinstance(msg, str) else b" ", 1)[0])
                if window[0] <= t <= window[1]:
                    latency.append(now - t)
        except Exception as e:
            print("reader", repr(e), flush=True)

    await asyncio.gather(*(open_one() for _ in range(n)))
    out.put(("connected", len(conns)))
    readers = [asyncio.ensure_future(reader(ws)) for ws in conns]
    loop = asyncio.get_running_loop()
    start, duration, warmup = await loop.run_in_executor(None, ctl.get)
    window[:] = [start + warmup, start + duration]
    await asyncio.sleep(max(0.0, start - time.time()))
    sent = 0
    tick = 0.01
    next_at = start
    rng = random.Random(os.getpid())
    while time.time() < start + duration:
        due = int((time.time() - start) * send_rate) - sent
        for _ in range(max(0, due)):
            ws = conns[rng.randrange(len(conns))]
            try:
                await ws.send(f"{time.time():.6f} c{sent}")
            except Exception:
                pass
            sent += 1
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - time.time()))
    await asyncio.sleep(2)
    out.put(("done", {"latency": latency, "received": received, "sent": sent}))
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    for r in readers:
        r.cancel()


# -- orchestration ----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--push-rate", type=int, default=2000)
    ap.add_argument("--send-rate", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--report", type=Path, default=REPORT)
    ap.add_argument("--append", action="store_true", help="add this run to the report instead of replacing it")
    ap.add_argument("--gc-thresholds", default="", help="[runtime] gc_thresholds for the gateway, e.g. 700,10,10")
    ap.add_argument("--no-gc-freeze", action="store_true", help="[runtime] gc_freeze = false")
    ap.add_argument("--profile", type=Path, help="run the gateway under cProfile, stats to this file")
    add_batch_pause_option(ap)
    args = ap.parse_args()
    nofile = raise_nofile()
    ctx = mp.get_context("spawn")

    port_q, bctl, bout = ctx.Queue(), ctx.Queue(), ctx.Queue()
    backend = ctx.Process(target=backend_main, args=(port_q, bctl, bout), daemon=True)
    backend.start()
    backend_port = port_q.get(timeout=30)

    gw_port = free_port()
    runtime = "[runtime]\n"
    if args.gc_thresholds:
        runtime += f"gc_thresholds = [{args.gc_thresholds}]\n"
    if args.no_gc_freeze:
        runtime += "gc_freeze = false\n"
    runtime += runtime_keys(args)
    args.gc_label = runtime.strip().replace("\n", ", ").replace("[runtime], ", "").replace("[runtime]", "defaults")
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    (work / "freescore.toml").write_text(f"""
[[listen]]
endpoint = "tcp:{gw_port}:interface=127.0.0.1:backlog=4096"

[gateway]
api_uri = "http://127.0.0.1:{backend_port}/websocket"
push_token = "{TOKEN}"
max_connections = {args.clients + 100}
{runtime}""")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("API_URI", "TARGET_ADDRESS", "WS_HOSTNAME", "LOCAL_ADDRESS", "WS_TIMEOUT"):
        env.pop(name, None)
    env["LOG_LEVEL"] = "warn"
    log = open(work / "twistd.log", "w")
    profile = [f"--profile={args.profile}", "--profiler=cprofile", "--savestats"] if args.profile else []
    gw = subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=", *profile, "freescore", "--config",
                           str(work / "freescore.toml")], env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while "freescore: ready" not in (work / "twistd.log").read_text():
            if time.time() > deadline or gw.poll() is not None:
                raise SystemExit("gateway did not start:\n" + (work / "twistd.log").read_text())
            time.sleep(0.1)

        url = f"ws://127.0.0.1:{gw_port}/gateway"
        per = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0) for i in range(args.procs)]
        cctl = [ctx.Queue() for _ in per]
        cout = ctx.Queue()
        t0 = time.time()
        procs = [ctx.Process(target=clients_main, args=(url, n, args.send_rate / args.procs, q, cout), daemon=True)
                 for n, q in zip(per, cctl, strict=True)]
        for p in procs:
            p.start()
        connected = 0
        for _ in procs:
            kind, count = cout.get(timeout=180)
            connected += count
        connect_time = time.time() - t0
        print(f"{connected} clients connected in {connect_time:.1f}s", flush=True)

        bctl.put("uris")
        uris = bout.get(timeout=30)
        start = time.time() + 2.0
        when = (start, args.duration, args.warmup)
        pout = ctx.Queue()
        pusher = ctx.Process(target=pusher_main, args=(uris, args.push_rate, when, pout), daemon=True)
        pusher.start()
        for q in [bctl, *cctl]:
            q.put(when)
        time.sleep(max(0.0, start + args.warmup - time.time()))
        cpu0, wall0 = cpu_seconds(gw.pid), time.time()  # the measured window only
        gc0 = snapshot(f"http://127.0.0.1:{gw_port}")
        time.sleep(max(0.0, start + args.duration - time.time()))
        cpu1, wall1 = cpu_seconds(gw.pid), time.time()
        gc_window = describe(gc0, snapshot(f"http://127.0.0.1:{gw_port}"))
        results = [cout.get(timeout=args.duration + 60)[1] for _ in procs]
        push_result = pout.get(timeout=60)
        bctl.put("report")
        backend_result = {**bout.get(timeout=60), **push_result}
        for p in procs:
            p.join(30)
        time.sleep(3)  # the close hooks
        bctl.put("finish")
        final = bout.get(timeout=30)["hooks_final"]
    finally:
        gw.terminate()
        gw.wait(30)
        log.close()
        backend.terminate()
    shutil.rmtree(work, ignore_errors=True)  # kept (with twistd.log) only when the run failed

    push_lat = [v for r in results for v in r["latency"]]
    put_lat = backend_result["put_latency"]
    received = sum(r["received"] for r in results)
    sent = sum(r["sent"] for r in results)
    p_push = percentiles(push_lat)
    p_put = percentiles(put_lat)
    p_http = percentiles(backend_result["push_http"])
    cpu = (cpu1 - cpu0) / (wall1 - wall0) * 100
    window = args.duration - args.warmup
    ops = (backend_result["pushes"] - backend_result["dropped"] + sent) * window / args.duration
    us_per_op = (cpu1 - cpu0) / ops * 1e6 if ops else float("nan")
    command = "python3 bench/gateway_load.py " + " ".join(sys.argv[1:])
    load = os.getloadavg()
    verdict = "met" if p_push[1] < 20 and p_put[1] < 20 else "NOT met"
    title = f"{args.clients} clients, {args.push_rate} pushes/s, {args.send_rate} client msgs/s"
    report = f"""## {title}

Command: `{command.strip()}`

Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this {os.cpu_count()}-core machine, loopback only,
(load average at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}). The load generator itself (a backend
process for the hooks, a pushing process, {args.procs} WebSocket client processes) shares those cores with the gateway.

Setup: {args.clients} clients ({connected} connected in {connect_time:.1f} s, each through a POST hook),
backend pushing {args.push_rate} msgs/s spread round-robin over them through `PUT {{ws_uri}}` (bearer auth),
clients sending {args.send_rate} msgs/s in total, each becoming an ordered `PUT` hook.
{args.duration:g} s of load; the first {args.warmup:g} s are not measured. RLIMIT_NOFILE = {nofile}.

| Path | samples | p50 ms | p99 ms | max ms |
|---|---|---|---|---|
| push -> client receive | {len(push_lat)} | {p_push[0]:.1f} | {p_push[1]:.1f} | {p_push[2]:.1f} |
| client send -> backend PUT hook | {len(put_lat)} | {p_put[0]:.1f} | {p_put[1]:.1f} | {p_put[2]:.1f} |
| push API HTTP round trip | {len(backend_result["push_http"])} | {p_http[0]:.1f} | {p_http[1]:.1f} | {p_http[2]:.1f} |

- Pushes issued: {backend_result["pushes"]} (skipped by the generator with 1000 queued behind 64 busy push connections:
  {backend_result["dropped"]}); push API statuses: {backend_result["statuses"]}; messages received by
  clients: {received}.
- Client messages sent: {sent}; hooks seen by the backend during the run: {backend_result["hooks"]};
  after the clients left: {final}.
- Gateway process CPU in the measured window: {cpu:.0f}% of one core, about {us_per_op:.0f} µs of CPU per
  operation (one push delivered or one client message forwarded).
- Collector passes in the measured window ([runtime] {args.gc_label}): {gc_window}.
- Target (both p99 under 20 ms): **{verdict}** in this run.
"""
    args.report.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.report.exists():
        args.report.write_text(args.report.read_text() + "\n" + report)
    else:
        args.report.write_text("# Gateway benchmark\n\n" + report)
    print(report)


if __name__ == "__main__":
    main()

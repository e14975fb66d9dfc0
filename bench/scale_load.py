#!/usr/bin/env python3
"""Two freescore nodes on one Redis vs one node, under the events load (bench/events_load.py's clients).

Runs, each with a fresh set of processes on 127.0.0.1:

- `one-memory`: one node, memory hub; every browser and the sender on it (the baseline);
- `one-redis`:  one node, Redis hub; same load (what the Redis path adds on one node);
- `two-redis`:  two nodes on one Redis; browsers split half and half over the nodes, the sender
  posts to node a, so node b's browsers get every post through Redis.

For each: deliveries/s, p50/p99 post -> receive latency, and for `two-redis` the figures of
each node's browsers apart (node b minus node a = what the cross-node Redis hop adds).
A light step (few posts/s) gives the added latency without queueing; a busier step the
throughput. Loopback only, bounded in time; it stops by itself.

    python3 bench/scale_load.py                      # ~1.5 min; writes bench/reports/scale.md
    python3 bench/scale_load.py --clients 2000 --rates 20,200 --duration 6
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
import events_load as ev  # noqa: E402
from redisproc import RedisServer, find_redis_server  # noqa: E402

REPORT = REPO / "bench" / "reports" / "scale.md"
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def start_node(workdir: Path, name: str, redis_url: str | None) -> tuple[subprocess.Popen, str]:
    config = workdir / f"{name}.toml"
    hub = f'[hub]\nbackend = "redis"\nurl = "{redis_url}"\nnode = "{name}"\n' if redis_url else ""
    config.write_text(
        '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n' + hub + "\n[events]\n"
        f'sender_token = "{ev.TOKEN}"\nmax_clients = 20000\nsender_rate_limit = 0.0\nlegacy = false\n'
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log_path = workdir / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "freescore", "--config",
                                 str(config)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        text = log_path.read_text()
        ready = "freescore: ready" in text and (redis_url is None or f"node {name} connected" in text)
        if ready:
            for line in text.splitlines():
                if "listening on " in line:
                    return proc, line.split("listening on ")[1].strip().rstrip("/")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{name} did not start: " + log_path.read_text()[-2000:])


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


class Setup:
    """Receivers spread over `urls` (one group per url), one sender on `urls[0]`."""

    def __init__(self, urls: list[str], clients: int, channels: int, procs_per_url: int) -> None:
        self.channels = [f"ch-{i}" for i in range(channels)]
        ctx = mp.get_context("fork")
        self.groups: list[list] = []
        per_url = clients // len(urls)
        for u, url in enumerate(urls):
            assignment = [self.channels[(u * per_url + i) % channels] for i in range(per_url)]
            group = []
            for k in range(procs_per_url):
                parent, child = ctx.Pipe()
                p = ctx.Process(target=ev.receiver_main, args=(child, url, assignment[k::procs_per_url]), daemon=True)
                p.start()
                group.append((p, parent))
            self.groups.append(group)
        self.connected = sum(pipe.recv()[1] for group in self.groups for _, pipe in group)
        self.expected_per_post = self.connected / channels
        parent, child = ctx.Pipe()
        self.sender = ctx.Process(target=ev.sender_main, args=(child, urls[0], ev.TOKEN, self.channels), daemon=True)
        self.sender.start()
        self.sender_pipe = parent
        self.sender_pipe.recv()

    def step(self, step: int, rate: float, duration: float) -> dict:
        self.sender_pipe.send(("step", step, rate, duration))
        _, _, sent, t0, t1 = self.sender_pipe.recv()
        time.sleep(1.0)  # deliveries in flight
        per_group = []
        for group in self.groups:
            hist = array("I", bytes(4 * ev.BUCKETS))
            total = 0
            for _, pipe in group:
                pipe.send(("stats", step))
                _, _, count, raw = pipe.recv()
                total += count
                if raw:
                    part = array("I")
                    part.frombytes(raw)
                    for i, c in enumerate(part):
                        if c:
                            hist[i] += c
            per_group.append((total, hist))
        total = sum(t for t, _ in per_group)
        merged = array("I", bytes(4 * ev.BUCKETS))
        for _, hist in per_group:
            for i, c in enumerate(hist):
                if c:
                    merged[i] += c

        def figures(count: int, hist: array) -> dict:
            return {"deliveries": count, "p50": ev.percentile(hist, count, 0.5),
                    "p99": ev.percentile(hist, count, 0.99)}

        return {"rate": rate, "posts": sent, "seconds": t1 - t0, "expected": sent * self.expected_per_post,
                "deliveries_per_s": total / (t1 - t0), **figures(total, merged),
                "nodes": [figures(c, h) for c, h in per_group]}

    def close(self) -> None:
        self.sender_pipe.send(("stop",))
        for group in self.groups:
            for _, pipe in group:
                pipe.send(("stop",))
        for p in [*(p for group in self.groups for p, _ in group), self.sender]:
            p.join(10)
            if p.is_alive():
                p.kill()


def run(kind: str, args, redis: RedisServer | None, scratch: Path) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix=f"scale-bench-{kind}-", dir=scratch))
    if redis is not None:
        redis.command("FLUSHALL")
    names = ["node-a", "node-b"] if kind == "two-redis" else ["node-a"]
    nodes = [start_node(workdir, name, redis.url if kind != "one-memory" else None) for name in names]
    try:
        setup = Setup([url for _, url in nodes], args.clients, args.channels, args.procs)
        time.sleep(args.settle)
        rows = []
        for i, rate in enumerate(float(x) for x in args.rates.split(",")):
            r = setup.step(i + 1, rate, args.duration)
            r["connected"] = setup.connected
            rows.append(r)
            print(kind, fmt(r), flush=True)
        setup.close()
        return rows
    finally:
        for proc, _ in nodes:
            stop(proc)


def fmt(r: dict) -> str:
    nodes = " / ".join(f"{n['p50']:.1f}, {n['p99']:.1f}" for n in r["nodes"]) if len(r["nodes"]) > 1 else "-"
    return (f"| {r['rate']:.0f} | {r['posts']} | {r['deliveries']} / {r['expected']:.0f} | "
            f"{r['deliveries_per_s']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {nodes} |")


HEADER = ("| posts/s | posts | deliveries / expected | deliveries/s | p50 ms | p99 ms "
          "| node a p50, p99 / node b p50, p99 (ms) |\n|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--procs", type=int, default=1, help="receiver processes per node")
    ap.add_argument("--rates", default="10,100", help="posts/s per step: a light one first, then a busy one")
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per step")
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--runs", default="one-memory,one-redis,two-redis")
    ap.add_argument("--report", type=Path, default=REPORT)
    args = ap.parse_args()
    ev.raise_nofile()
    binary = find_redis_server()
    if binary is None:
        raise SystemExit("no redis-server binary (see docs/redis.md)")
    scratch = tempfile.TemporaryDirectory(prefix="scale-bench-")  # Redis's and the nodes' folders; removed at exit
    redis = RedisServer(binary, Path(scratch.name) / "redis").start()
    load = os.getloadavg()[0]
    results = {}
    try:
        for kind in args.runs.split(","):
            results[kind] = run(kind, args, redis, Path(scratch.name))
    finally:
        redis.kill()
    lines = [
        "# Two nodes vs one node (events load through the Redis hub)", "",
        f"Command: `python3 {' '.join(sys.argv)}`", "",
        f"{args.clients} WebSocket-transport Socket.IO browsers on {args.channels} channels "
        f"({args.clients // args.channels} per channel), one sender posting to node a; clients from "
        "bench/events_load.py (own epoll loop, hand-parsed frames). Redis 7 (no persistence), the nodes, "
        f"the clients and the sender all share this {os.cpu_count()}-core machine (1-minute load average "
        f"{load:.1f} at the start); runs are kept short (a few seconds per step).",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
    ]
    titles = {
        "one-memory": "One node, memory hub (baseline)",
        "one-redis": "One node, Redis hub",
        "two-redis": "Two nodes on one Redis (browsers half on each; node b gets every post through Redis)",
    }
    for kind, rows in results.items():
        lines += [f"## {titles[kind]}", "", f"Connected {rows[0]['connected']}/{args.clients}", "", HEADER,
                  *(fmt(r) for r in rows), ""]
    p50 = {kind: rows[0]["p50"] for kind, rows in results.items()}
    if "two-redis" in results:
        light = results["two-redis"][0]["nodes"]
        lines += ["## Added post -> receive latency of the Redis path (light step)", "",
                  f"- node b vs node a browsers, same posts: p50 {light[1]['p50'] - light[0]['p50']:+.1f} ms "
                  f"(a {light[0]['p50']:.1f} ms, b {light[1]['p50']:.1f} ms)"]
    if "one-memory" in p50 and "one-redis" in p50:
        lines.append(f"- one node, Redis hub vs memory hub: p50 {p50['one-redis'] - p50['one-memory']:+.1f} ms")
    lines.append("")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print(f"report written to {args.report}")


if __name__ == "__main__":
    main()

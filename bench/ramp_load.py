#!/usr/bin/env python3
"""Connection storms: N Socket.IO clients, then N clicker devices, all connecting at once to a real twistd.

What a contest start or a venue's Wi-Fi coming back looks like (issue 17 item 1). Each run
starts a fresh `twistd -n freescore` on 127.0.0.1 with [events] and [clicker], then

- events: `--clients` WebSocket-transport Socket.IO clients (bench/events_load.py's receivers,
  with no limit on connections in flight) connect at once; the ramp ends when the last one has
  its CONNECT answered. Then a sender posts at `--rate` over `--channels` channels: the p99 of
  post -> message in the first `--window` seconds right after the ramp, then `--gap` seconds
  more of the same load, then a steady-state window of the same length.
- clicker: `--devices` devices (bench/clicker_load.py's client) open their WebSocket at once
  and REGISTER; the ramp ends with the last `REGISTERED`.

Around each ramp it reads the kernel's ListenOverflows and ListenDrops (/proc/net/netstat; they
count every listening socket of the host, so keep the machine otherwise quiet). `--runs` runs
of each, median and range in the report (default bench/reports/ramp.md). `--backlog N` sets
the endpoint's `backlog=` (Twisted's old default was 50) to compare with freescore's default.

    python3 bench/ramp_load.py                                   # 5 000 clients, 1 000 devices, 3 runs
    python3 bench/ramp_load.py --clients 200 --devices 200 --runs 1 --report /tmp/ramp.md   # smoke

Loopback only; every phase is bounded (`--timeout` per ramp), it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import events_load  # bench/ is the script's folder, so on sys.path
from clicker_load import open_client, request
from loadkit import add_batch_pause_option, cpu_seconds, listen_drops, runtime_table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
REPORT = REPO / "bench" / "reports" / "ramp.md"


def config(backlog: int | None, clients: int, args=None) -> str:
    suffix = f":backlog={backlog}" if backlog else ""
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1{suffix}"

[events]
sender_token = "{events_load.TOKEN}"
max_clients = {max(20000, 2 * clients)}
sender_rate_limit = 0.0
legacy = false

[clicker]
state = "state"
""" + (runtime_table(args) if args is not None else "")


# -- clicker devices ---------------------------------------------------------------------------
async def _devices(url: str, count: int, go: float, timeout: float) -> dict:
    await asyncio.sleep(max(0.0, go - time.time()))  # every worker starts at the same moment

    async def one():
        client = await open_client(url, "raw")
        await request(client, "REGISTER")
        return client

    results = await asyncio.gather(*(asyncio.wait_for(one(), timeout) for _ in range(count)), return_exceptions=True)
    done = time.time()
    clients = [r for r in results if not isinstance(r, BaseException)]
    for client in clients:
        client.close()
    await asyncio.sleep(0.2)
    return {"registered": len(clients), "done": done}


def devices_main(url: str, count: int, timeout: float, ready: mp.Queue, go: mp.Queue, results: mp.Queue) -> None:
    events_load.raise_nofile()
    ready.put(os.getpid())
    results.put(asyncio.run(_devices(url, count, go.get(), timeout)))


# -- one run of each scenario ---------------------------------------------------------------------
def counters_and_cpu(pid: int) -> tuple[dict[str, int], float]:
    return listen_drops(), cpu_seconds(pid)


def ramp_figures(before: tuple[dict[str, int], float], after: tuple[dict[str, int], float]) -> dict:
    (drops0, cpu0), (drops1, cpu1) = before, after
    return {
        "overflows": drops1["ListenOverflows"] - drops0["ListenOverflows"],
        "drops": drops1["ListenDrops"] - drops0["ListenDrops"],
        "ramp_cpu": cpu1 - cpu0,
    }


def events_run(fs, args) -> dict:
    pid = fs.proc.pid
    before = counters_and_cpu(pid)
    run = events_load.Run(fs.url(), events_load.TOKEN, args.clients, args.channels, args.procs, pid,
                          settle=0.0, in_flight_limit=0)
    row = {"connected": run.connected, "ramp": run.ramp_seconds,
           **ramp_figures(before, (listen_drops(), cpu_seconds(pid)))}
    try:
        row["first"] = run.step(1, args.rate, args.window)
        if args.gap > 0:
            run.step(2, args.rate, args.gap)
        row["steady"] = run.step(3, args.rate, args.window)
    finally:
        run.close()
    return row


def clicker_run(fs, args) -> dict:
    pid = fs.proc.pid
    ctx = mp.get_context("spawn")
    ready, go_queue, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    shares = [args.devices // args.procs + (k < args.devices % args.procs) for k in range(args.procs)]
    url = fs.url(scheme="ws") + "/ws"
    procs = [ctx.Process(target=devices_main, args=(url, n, args.timeout, ready, go_queue, results)) for n in shares]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    before = counters_and_cpu(pid)
    go = time.time() + 0.3
    for _ in procs:
        go_queue.put(go)
    got = [results.get(timeout=args.timeout + 30) for _ in procs]
    after = counters_and_cpu(pid)
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    return {"connected": sum(g["registered"] for g in got), "ramp": max(g["done"] for g in got) - go,
            **ramp_figures(before, after)}


# -- report ------------------------------------------------------------------------------------------
def spread(values: list[float], fmt: str) -> str:
    """Median and range of the runs, e.g. `5.8 (5.6-6.0)`."""
    values = [v for v in values if v == v]  # without NaN
    if not values:
        return "n/a"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def ramp_rows(name: str, wanted: int, runs: list[dict]) -> list[str]:
    rows = [f"| {name} run {i + 1} | {r['connected']}/{wanted} | {r['ramp']:.2f} | {r['overflows']} | {r['drops']} | "
            f"{r['ramp_cpu']:.2f} |" for i, r in enumerate(runs)]
    rows.append(f"| **{name} median (range)** | | {spread([r['ramp'] for r in runs], '.2f')} | "
                f"{spread([r['overflows'] for r in runs], '.0f')} | {spread([r['drops'] for r in runs], '.0f')} | "
                f"{spread([r['ramp_cpu'] for r in runs], '.2f')} |")
    return rows


def fanout_row(label: str, s: dict) -> str:
    cpu = f"{s['cpu_us']:.1f}" if s.get("cpu_us") is not None else "n/a"
    return (f"| {label} | {s['deliveries']} / {s['expected']:.0f} | {s['deliveries_per_s']:,.0f} | {s['p50']:.1f} | "
            f"{s['p99']:.1f} | {s['max']:.1f} | {cpu} |")


def write_report(args, load_start: float, events: list[dict], clicker: list[dict]) -> None:
    cmd = "python3 " + " ".join(shlex.quote(a) for a in ["bench/ramp_load.py", *sys.argv[1:]])
    backlog = f"`backlog={args.backlog}` in the endpoint" if args.backlog else "freescore's default backlog"
    lines = [
        "# Connection storm (ramp) report", "",
        f"Command: `{cmd}`", "",
        f"Taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}), loopback, generator and server on the same machine; 1-minute load "
        f"average at the start {load_start:.1f}, at the end {os.getloadavg()[0]:.1f} ({os.cpu_count()}.0: every core "
        f"busy). Listener: {backlog}. A fresh server per run.", "",
        "Ramp: from starting the clients to the last one connected (Socket.IO: CONNECT answered; clicker: "
        "`REGISTERED`). Overflows and drops: the kernel's ListenOverflows and ListenDrops over the ramp, host-wide. "
        "Server CPU: the freescore process's user+system seconds over the ramp.", "",
        "| ramp | connected | seconds | ListenOverflows | ListenDrops | server CPU s |", "|---|---|---|---|---|---|",
    ]
    if events:
        lines += ramp_rows(f"{args.clients} Socket.IO clients", args.clients, events)
    if clicker:
        lines += ramp_rows(f"{args.devices} clicker devices", args.devices, clicker)
    if events:
        subscribers = args.clients / args.channels
        lines += [
            "", "## Fan-out right after the Socket.IO ramp against steady state", "",
            f"{args.rate:g} posts/s over {args.channels} channels ({subscribers:.0f} subscribers each). First: the "
            f"{args.window:g} s starting as the ramp ends; steady: {args.window:g} s after {args.gap:g} s more of the "
            "same load. Latency is post -> message (ms), as in bench/events_load.py.", "",
            "| window | deliveries / expected | deliveries/s | p50 | p99 | max | server µs per delivery |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, r in enumerate(events):
            lines += [fanout_row(f"run {i + 1} first", r["first"]), fanout_row(f"run {i + 1} steady", r["steady"])]
        ratios = [r["first"]["p99"] / r["steady"]["p99"] for r in events if r["steady"]["p99"] > 0]
        lines += ["", f"p99 first / p99 steady: {spread(ratios, '.2f')} (median (range) of the runs; the target is "
                  "at most 2).", "",
                  f"p99 first: {spread([r['first']['p99'] for r in events], '.1f')} ms; p99 steady: "
                  f"{spread([r['steady']['p99'] for r in events], '.1f')} ms."]
    lines.append("")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines))
    print(f"report written to {args.report}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["events", "clicker", "both"], default="both")
    ap.add_argument("--clients", type=int, default=5000, help="Socket.IO clients in the events ramp")
    ap.add_argument("--devices", type=int, default=1000, help="clicker devices in the clicker ramp")
    ap.add_argument("--procs", type=int, default=3, help="generator processes per ramp")
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--rate", type=float, default=40.0, help="posts/s in the fan-out windows")
    ap.add_argument("--window", type=float, default=5.0, help="seconds of each measured fan-out window")
    ap.add_argument("--gap", type=float, default=15.0, help="seconds of load between the two windows")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backlog", type=int, help="set backlog= in the endpoint (default: freescore's)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="longest a device may take to register (the Socket.IO receivers give up after 90 s)")
    ap.add_argument("--report", type=Path, default=REPORT)
    add_batch_pause_option(ap)
    args = ap.parse_args()
    events_load.raise_nofile()
    from harness import FreescoreProcess

    load_start = os.getloadavg()[0]
    results: dict[str, list[dict]] = {"events": [], "clicker": []}
    wanted = ["events", "clicker"] if args.scenario == "both" else [args.scenario]
    for i in range(args.runs):
        for scenario in wanted:
            with tempfile.TemporaryDirectory() as tmp:
                fs = FreescoreProcess(config(args.backlog, args.clients, args), Path(tmp)).start()
                try:
                    row = events_run(fs, args) if scenario == "events" else clicker_run(fs, args)
                finally:
                    fs.stop()
            results[scenario].append(row)
            extra = (f", p99 first {row['first']['p99']:.1f} ms / steady {row['steady']['p99']:.1f} ms"
                     if scenario == "events" else "")
            print(f"run {i + 1} {scenario}: {row['connected']} connected in {row['ramp']:.2f} s, "
                  f"{row['overflows']} overflows, {row['drops']} drops{extra}", flush=True)
    write_report(args, load_start, results["events"], results["clicker"])


if __name__ == "__main__":
    main()

"""Clicker load: N devices sending SCOREs at a fixed rate, M listeners relaying, on loopback.

Starts its own `twistd freescore` (state in a temporary folder), then runs
worker processes (asyncio + `websockets`), each owning a share of the devices
and of the listeners that watch them. Every device REGISTERs, every listener
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
import random
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


# -- worker process ----------------------------------------------------------------
async def _worker(url: str, devices: int, listeners: int, per_listener: int, rate: float,
                  ready: mp.Queue, go: mp.Queue, results: mp.Queue, warmup: float, duration: float) -> None:
    import websockets

    def connect():
        return websockets.connect(url, proxy=None, ping_interval=None, compression=None, max_queue=None,
                                  open_timeout=60)

    devs = []
    for i in range(0, devices, 50):  # connect in batches: a burst of 1000 SYNs overflows the backlog
        devs.extend(await asyncio.gather(*(connect() for _ in range(min(50, devices - i)))))

    async def register(ws):
        await ws.send("REGISTER")
        return (await ws.recv()).split(" ")[1]

    ids = await asyncio.gather(*(register(ws) for ws in devs))
    subs = []
    for n in range(listeners):
        ws = await connect()
        watched = ids[n * per_listener:(n + 1) * per_listener]
        verb = "SUBSCRIBE" if n % 2 == 0 else "LISTEN"
        await ws.send(f"{verb} " + " ".join(watched))
        connected: list[str] = []
        while len(connected) < len(watched):  # every watched device is registered: all are listed
            connected += (await ws.recv()).split(" ")[1:]
        subs.append((ws, verb))
    ready.put(os.getpid())
    t0 = go.get()
    start_measure = t0 + warmup
    end_send = start_measure + duration
    loop = asyncio.get_running_loop()

    sent_at: list[dict[int, int]] = [{} for _ in devs]
    rtts: list[float] = []
    relays: list[float] = []
    counts = {"sent": 0, "acked": 0, "relayed": 0, "sent_total": 0, "acked_total": 0, "late": 0}

    async def device(k: int, ws) -> None:
        period = 1.0 / rate
        phase = random.random() * period
        msg = 0
        pending = sent_at[k]
        next_t = t0 + phase

        async def reader():
            async for line in ws:
                t = now_us()
                parts = line.split(" ")
                m = int(parts[1])
                s = pending.pop(m, None)
                counts["acked_total"] += 1
                if s is not None and s >= start_measure * 1e6:
                    rtts.append((t - s) / 1000.0)
                    counts["acked"] += 1

        task = asyncio.ensure_future(reader())
        while True:
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -period:
                counts["late"] += 1
            if time.monotonic() >= end_send:
                break
            msg += 1
            ts = now_us()
            if next_t >= start_measure:
                pending[msg] = ts
                counts["sent"] += 1
            counts["sent_total"] += 1
            await ws.send(f"SCORE {msg} {ts} {msg}")
            next_t += period
        await asyncio.sleep(3.0)  # let the last acknowledgements arrive
        task.cancel()

    async def listener(ws, verb: str) -> None:
        async for line in ws:
            t = now_us()
            parts = line.split(" ")
            if parts[0] != "SCORE":
                continue
            ts = int(parts[1])
            if ts >= start_measure * 1e6:
                relays.append((t - ts) / 1000.0)
                counts["relayed"] += 1

    listen_tasks = [asyncio.ensure_future(listener(ws, verb)) for ws, verb in subs]
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    await asyncio.gather(*(device(k, ws) for k, ws in enumerate(devs)))
    for t in listen_tasks:
        t.cancel()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put({"rtts": rtts, "relays": relays, "counts": counts, "cpu": usage.ru_utime + usage.ru_stime,
                 "unacked_in_window": sum(1 for p in sent_at for s in p.values() if s >= start_measure * 1e6)})
    await asyncio.gather(*(ws.close() for ws in devs), *(ws.close() for ws, _ in subs), return_exceptions=True)
    del loop


def worker_main(*args) -> None:
    asyncio.run(_worker(*args))


# -- server measurements --------------------------------------------------------------
def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
        p = ctx.Process(target=worker_main, args=(url, per_proc_dev, per_proc_lis, args.per_listener, rate,
                                                  ready, go, results, args.warmup, args.duration))
        p.start()
        procs.append(p)
    for _ in procs:
        ready.get(timeout=120)
    pid = fs.proc.pid
    rss_idle = proc_rss_mb(pid)
    t0 = time.monotonic() + 0.5
    for _ in procs:
        go.put(t0)
    time.sleep(max(0.0, t0 + args.warmup - time.monotonic()))
    cpu0, w0 = proc_cpu(pid), time.monotonic()
    rss_peak = 0.0
    while time.monotonic() < t0 + args.warmup + args.duration:
        rss_peak = max(rss_peak, proc_rss_mb(pid))
        time.sleep(0.5)
    cpu1, w1 = proc_cpu(pid), time.monotonic()
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
        "unacked": sum(g["unacked_in_window"] for g in got),
        "late": sum(g["counts"]["late"] for g in got),
        "rtt_p50": pct(rtts, 50), "rtt_p99": pct(rtts, 99), "rtt_max": max(rtts, default=float("nan")),
        "relay_p50": pct(relays, 50), "relay_p99": pct(relays, 99),
        "server_cpu": (cpu1 - cpu0) / (w1 - w0) * 100, "rss_idle": rss_idle, "rss_peak": rss_peak,
        "gen_cpu": sum(g["cpu"] for g in got) / (args.warmup + args.duration + 3) * 100,
        "mean_rtt": statistics.fmean(rtts) if rtts else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--rates", default="10", help="SCOREs per second per device, comma-separated levels")
    ap.add_argument("--listeners", type=int, default=50)
    ap.add_argument("--per-listener", type=int, default=20)
    ap.add_argument("--procs", type=int, default=2, help="load generator processes")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--report", type=Path, default=REPO / "bench" / "reports" / "clicker.md")
    args = ap.parse_args()
    if args.listeners * args.per_listener > args.devices:
        ap.error("listeners x per-listener must not exceed devices (each device is watched once)")
    from harness import FreescoreProcess

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fs = FreescoreProcess(CONFIG, Path(tmp)).start()
        try:
            for rate in (float(r) for r in args.rates.split(",")):
                row = run_level(fs, args, rate)
                rows.append(row)
                print(
                    f"rate {rate:g}/s/device: acked {row['acked_per_s']:.0f}/s, SCORED p50 {row['rtt_p50']:.1f} ms "
                    f"p99 {row['rtt_p99']:.1f} ms, relay p50 {row['relay_p50']:.1f} ms p99 {row['relay_p99']:.1f} ms, "
                    f"server CPU {row['server_cpu']:.0f}%, RSS {row['rss_peak']:.0f} MB", flush=True,
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
        f"({args.procs} asyncio/`websockets` processes) on the same machine as the server, "
        "**under contention** from other builds and benchmarks sharing the 2 cores.",
        "",
        f"{args.devices} devices each sending `SCORE <msgId> <timestamp> <score>` at the given rate "
        "(not waiting for the acknowledgement), "
        f"{args.listeners} listeners each watching {args.per_listener} devices (half SUBSCRIBE, half LISTEN), "
        f"so every SCORE is relayed once. {args.warmup:g} s warm-up, then {args.duration:g} s measured.",
        "SCORED round trip: device send to its `SCORED`. Relay latency: device send to the listener's `SCORE` line.",
        "",
        "| SCORE/s offered | SCORE/s acked | SCORED p50 | SCORED p99 | relay p50 | relay p99 | unacked | "
        "server CPU | server RSS (idle/peak) | generator CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['offered']:.0f} | {r['acked_per_s']:.0f} | {r['rtt_p50']:.1f} ms | {r['rtt_p99']:.1f} ms | "
            f"{r['relay_p50']:.1f} ms | {r['relay_p99']:.1f} ms | {r['unacked']} | {r['server_cpu']:.0f}% | "
            f"{r['rss_idle']:.0f}/{r['rss_peak']:.0f} MB | {r['gen_cpu']:.0f}% |"
        )
    lines.append("")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines))
    print(f"report written to {args.report}")


if __name__ == "__main__":
    main()

"""Connection churn against the collector policy ([runtime]); loopback only; writes bench/reports/runtime.md.

A real `twistd freescore` with the clicker holds --hold open listeners
(SUBSCRIBE, CONNECT); each second the --rate oldest close and as many new
ones open, for --duration seconds, so every connection lives --hold/--rate
seconds. A connection that closes after a collector pass promoted it to the
old generation leaves objects in reference cycles there, which only a full
pass frees. Reported per policy: the
server's RSS over time and its collector passes (from /metrics).

Usage: python3 bench/gc_churn.py [--hold 2000] [--rate 200] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from gcstats import describe, snapshot  # bench/ is the script's folder, so on sys.path
from loadkit import rss_kib

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

POLICIES = {
    "freescore defaults": "",
    "interpreter defaults": "gc_freeze = false\ngc_thresholds = []\ngc_full_after_closes = 0\ngc_full_interval = 0\n",
    "raised thresholds, no close rule": "gc_full_after_closes = 0\ngc_full_interval = 0\n",
}
CONFIG = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1:backlog=4096"

[clicker]
state = "state"
ping_interval = 60.0

[runtime]
{runtime}"""


def rss_mb(pid: int) -> float:
    return rss_kib(pid) / 1024


async def churn(url: str, hold: int, rate: int, duration: float, pid: int) -> tuple[list[float], int]:
    """Keep `hold` listeners open; each second replace the `rate` oldest with new ones."""
    from collections import deque

    from websockets.asyncio.client import connect

    sem = asyncio.Semaphore(100)

    async def one():
        async with sem:
            ws = await connect(url, compression=None, ping_interval=None)
            await ws.send("SUBSCRIBE 123456")
            await ws.recv()
            return ws

    held = deque(await asyncio.gather(*(one() for _ in range(hold))))
    samples = [rss_mb(pid)]
    done = 0
    start = time.monotonic()
    next_sample = start + 1.0
    while time.monotonic() < start + duration:
        due = int((time.monotonic() - start) * rate) - done
        if due > 0:
            old = [held.popleft() for _ in range(min(due, len(held)))]
            fresh = await asyncio.gather(*(one() for _ in range(due)), *(ws.close() for ws in old))
            held.extend(fresh[:due])
            done += due
        if time.monotonic() >= next_sample:
            samples.append(rss_mb(pid))
            next_sample += 1.0
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    samples.append(rss_mb(pid))
    await asyncio.gather(*(ws.close() for ws in held))
    return samples, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hold", type=int, default=2000, help="connections kept open throughout")
    ap.add_argument("--rate", type=int, default=200, help="oldest connections replaced per second")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--report", type=Path, default=REPO / "bench" / "reports" / "runtime.md")
    args = ap.parse_args()
    import resource

    from harness import FreescoreProcess

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = []
    for label, runtime in POLICIES.items():
        with tempfile.TemporaryDirectory() as tmp:
            fs = FreescoreProcess(CONFIG.format(runtime=runtime), Path(tmp)).start()
            try:
                url = fs.url()
                before = snapshot(url)
                rss, closed = asyncio.run(churn(fs.url(0, "ws") + "/ws", args.hold, args.rate, args.duration,
                                                fs.proc.pid))
                passes = describe(before, snapshot(url))
            finally:
                fs.stop()
        mid = rss[len(rss) // 2]
        rows.append((label, closed, rss[0], mid, max(rss), rss[-1], passes))
        print(f"{label}: {closed} closed, RSS start {rss[0]:.0f} MB, mid {mid:.0f} MB, peak {max(rss):.0f} MB, "
              f"end {rss[-1]:.0f} MB; {passes}", flush=True)
    command = "python3 bench/gc_churn.py " + " ".join(sys.argv[1:])
    lines = [
        "# Collector policy under connection churn",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this {os.cpu_count()}-core machine, "
        f"loopback. A real `twistd freescore` (clicker) holds {args.hold} open listeners (SUBSCRIBE); each second "
        f"the {args.rate} oldest close and as many new ones open, for {args.duration:g} s.",
        "RSS after the held connections opened, halfway, at its peak and at the end; collector passes",
        "during the churn, from `freescore_gc_pause_seconds` on /metrics.",
        "",
        "| policy ([runtime]) | closed | RSS start | RSS half-way | RSS peak | RSS end | collector passes |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, closed, start, mid, peak, end, passes in rows:
        lines.append(f"| {label} | {closed} | {start:.0f} MB | {mid:.0f} MB | {peak:.0f} MB | {end:.0f} MB | "
                     f"{passes} |")
    lines += ["", "Policies: " + "; ".join(
        f"{label}: `{runtime.strip().replace(chr(10), ', ') or '(no [runtime] keys)'}`"
        for label, runtime in POLICIES.items()) + ".", ""]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines))
    print(f"report written to {args.report}")


if __name__ == "__main__":
    main()

"""Load generator shared by the FreeScore services: rings x (judges + displays) against a real `twistd freescore`.

A `Scenario` says what is service-specific (route, data, the judge's score request,
what the report adds); `run(scenario)` does the rest. Two phases, each bounded in
time, on loopback only:
  max    every judge sends its next score as soon as its own broadcast comes back;
  paced  every judge sends one score per second.
It measures score -> the LAST display of the ring receiving that update (p50/p99/max) and
acknowledged scores per second, then writes bench/reports/<service>.md.

Every scenario keeps the division from moving (an incomplete score, or an autopilot whose
delays never end), so every request measures the same score -> write -> broadcast path.
Runners: bench/worldclass_load.py, bench/freestyle_load.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
from loadkit import add_batch_pause_option, runtime_table  # noqa: E402

from harness import FreescoreProcess  # noqa: E402

ScoreRequest = Callable[[str, int, int, int], dict[str, Any]]


@dataclass(frozen=True)
class Scenario:
    """What one FreeScore service's load differs in."""

    service: str
    """The route and metrics name (`worldclass`, `freestyle`)."""
    make_data: Callable[[Path, int, int], None]
    """(data root, rings, judges): one division per ring of tournament `bench`, scoring already open."""
    score: ScoreRequest
    """(key, judge, judges, n) -> the n-th score request of a judge, carrying `"bench": key`."""
    judge_role: Callable[[int], str]
    """The URL role a judge's tablet connects with."""
    config: str
    """The service's table (after `[<service>]`), with autopilot delays that never end."""
    division: str
    """The division, for the report's setup line."""
    notes: tuple[str, ...] = ()
    """Paragraphs the report adds."""
    default_judges: int = 7
    report: str = ""
    """The report's file name in bench/reports without `.md` (default: the service)."""


def marker(text: str) -> str | None:
    i = text.find('"bench":"')
    if i < 0:
        return None
    j = text.find('"', i + 9)
    return text[i + 9:j]


async def display(url: str, arrivals: dict[str, float], deadline: float) -> None:
    """Keep the latest arrival time (CLOCK_MONOTONIC, comparable across processes) per score."""
    async with websockets.connect(url, max_size=None) as ws:
        while time.monotonic() < deadline:
            try:
                text = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            key = marker(text)
            if key is not None:
                now = time.monotonic()
                if now > arrivals.get(key, 0.0):
                    arrivals[key] = now


def display_worker(base: str, service: str, rings: list[int], displays: int, seconds: float,  # type: ignore[no-untyped-def]
                   conn) -> None:
    """A process of its own for the displays, so receiving does not delay the judges' clock."""
    async def run() -> dict[str, float]:
        arrivals: dict[str, float] = {}
        deadline = time.monotonic() + seconds
        tasks = [asyncio.create_task(display(f"{base}/{service}/bench/{r}/observer", arrivals, deadline))
                 for r in rings for _ in range(displays)]
        await asyncio.sleep(1.0)
        conn.send("ready")
        await asyncio.gather(*tasks, return_exceptions=True)
        return arrivals

    conn.send(asyncio.run(run()))


async def judge(url: str, scenario: Scenario, ring: int, j: int, judges: int, stop: asyncio.Event,
                pace: float | None, sent: dict[str, float], acked: list[int]) -> None:
    async with websockets.connect(url, max_size=None) as ws:
        if pace is not None:  # judges do not all press "send" in the same millisecond
            await asyncio.sleep(pace * ((ring * 7 + j) % 29) / 29)
        n = 0
        while not stop.is_set():
            n += 1
            key = f"r{ring}j{j}n{n}"
            request = scenario.score(key, j, judges, n)
            started = time.monotonic()
            sent[key] = started
            await ws.send(json.dumps(request))
            while True:  # wait for our own broadcast: the acknowledgement
                text = await asyncio.wait_for(ws.recv(), 30)
                if marker(text) == key:
                    break
            acked[0] += 1
            if pace is not None:
                await asyncio.sleep(max(0.0, pace - (time.monotonic() - started)))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


async def judges_phase(base: str, scenario: Scenario, args: argparse.Namespace, pace: float | None,
                       seconds: float, sent: dict[str, float]) -> tuple[int, float]:
    stop = asyncio.Event()
    acked = [0]
    start = time.monotonic()
    tasks = [asyncio.create_task(judge(f"{base}/{scenario.service}/bench/{r}/{scenario.judge_role(j)}", scenario,
                                       r, j, args.judges, stop, pace, sent, acked))
             for r in range(1, args.rings + 1) for j in range(args.judges)]
    await asyncio.sleep(seconds)
    stop.set()
    elapsed = time.monotonic() - start
    await asyncio.gather(*tasks, return_exceptions=True)
    return acked[0], elapsed


def server_histogram(http: str, service: str) -> dict[float, float]:
    """Cumulative bucket counts of freescore_<service>_request_seconds from /metrics."""
    import urllib.request

    text = urllib.request.urlopen(http + "/metrics", timeout=10).read().decode()
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"freescore_{service}_request_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def bucket_pct(before: dict[float, float], after: dict[float, float], p: float) -> float:
    """Upper bound (ms) of the bucket holding the p-th percentile of what happened between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return float("nan")
    for b, c in zip(bounds, counts, strict=True):
        if c >= p / 100 * counts[-1]:
            return b * 1000
    return float("inf")


def phase(base: str, scenario: Scenario, args: argparse.Namespace, pace: float | None, seconds: float
          ) -> dict[str, float]:
    http = base.replace("ws://", "http://")
    before = server_histogram(http, scenario.service)
    ctx = multiprocessing.get_context("fork")
    workers = []
    rings = list(range(1, args.rings + 1))
    groups = [rings[i::args.display_procs] for i in range(args.display_procs)]
    for group in groups:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=display_worker,
                           args=(base, scenario.service, group, args.displays, display_seconds(args, seconds), child))
        proc.start()
        workers.append((proc, parent))
    for _, parent in workers:
        assert parent.recv() == "ready"
    sent: dict[str, float] = {}
    acked, elapsed = asyncio.run(judges_phase(base, scenario, args, pace, seconds, sent))
    arrivals: dict[str, float] = {}
    for proc, parent in workers:
        for key, t in parent.recv().items():
            arrivals[key] = max(t, arrivals.get(key, 0.0))
        proc.join()
    # a score counts once every display of its ring has it: the latest arrival over all of them
    lat = [arrivals[k] - t for k, t in sent.items() if k in arrivals]
    after = server_histogram(http, scenario.service)
    return {"requests": acked, "rps": acked / elapsed, "samples": len(lat), "p50": pct(lat, 50),
            "p99": pct(lat, 99), "max": max(lat) * 1000 if lat else float("nan"),
            "server_p50": bucket_pct(before, after, 50), "server_p99": bucket_pct(before, after, 99)}


def phase_arguments(ap: argparse.ArgumentParser, rings: int, judges: int, displays: int, report: str) -> None:
    """The options every rings x (judges + displays) load shares; `report` is its file name in bench/reports."""
    ap.add_argument("--rings", type=int, default=rings)
    ap.add_argument("--judges", type=int, default=judges)
    ap.add_argument("--displays", type=int, default=displays)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--paced-seconds", type=float, default=15.0)
    ap.add_argument("--display-procs", type=int, default=2, help="processes receiving for the displays")
    ap.add_argument("--drain", type=float, default=3.0,
                    help="seconds the displays keep reading after the judges stop (late updates still count)")
    ap.add_argument("--report", default=str(REPO / "bench" / "reports" / report))
    add_batch_pause_option(ap)


def display_seconds(args: argparse.Namespace, seconds: float) -> float:
    """How long a display process reads in a phase of `seconds`: the second it takes to be ready, the
    phase, then the drain."""
    return 1.0 + seconds + args.drain


def server_config(scenario: Scenario) -> str:
    """One loopback listener on any port and the service's table, its data root `data` beside the file."""
    return (f'[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[{scenario.service}]\ndata = "data"\n'
            + scenario.config)


def write_probe(folder: Path, count: int = 40) -> tuple[float, float]:
    """p50/p99 (ms) of freescore.persist.write_atomic on this disk right now: the floor of every score."""
    from freescore.persist import write_atomic

    times = []
    for i in range(count):
        started = time.monotonic()
        write_atomic(folder / "probe.txt", "x" * 4000 + str(i))
        times.append(time.monotonic() - started)
    return pct(times, 50), pct(times, 99)


def run(scenario: Scenario, description: str, parents: tuple[argparse.ArgumentParser, ...] = ()) -> None:
    """Parse the command line (with the runner's own options of `parents`), run both phases against a fresh
    twistd, write and print the report."""
    ap = argparse.ArgumentParser(description=description, parents=list(parents))
    phase_arguments(ap, rings=4, judges=scenario.default_judges, displays=20,
                    report=f"{scenario.report or scenario.service}.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenario.make_data(work / "data", args.rings, args.judges)
        config = server_config(scenario) + runtime_table(args)
        probe_before = write_probe(work)
        fs = FreescoreProcess(config, work).start()
        try:
            base = fs.url(0, "ws")
            fast = phase(base, scenario, args, None, args.max_seconds)
            paced = phase(base, scenario, args, 1.0, args.paced_seconds)
        finally:
            fs.stop()
        probe_after = write_probe(work)
    command = f"python3 bench/{scenario.service}_load.py " + " ".join(sys.argv[1:])
    lines = [
        f"# {scenario.service} load benchmark",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Setup: {args.rings} rings x ({args.judges} judges + {args.displays} displays), one real "
        f"`twistd -n freescore` on 127.0.0.1, {scenario.division}; load generator (websockets: "
        f"judges in one asyncio process, displays in {args.display_procs} more) on the same machine. "
        "Every score is written atomically (fsync) before its "
        "broadcast. Latency = judge sends score -> the last of the ring's displays has the update.",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. The load "
        f"generator shares the cores with the server (1-minute load average at the end {os.getloadavg()[0]:.1f}).",
        "",
        "Columns p50/p99/max: end to end, score sent -> last display has it. Server p50/p99: the server's "
        "own share (frame received -> broadcast written to every socket, including the fsync'd file "
        f"write), read from the `freescore_{scenario.service}_request_seconds` histogram on /metrics; shown as "
        "the upper bound of the histogram bucket (ms).",
        "",
        "Disk: `write_atomic` (temp file, fsync, rename, fsync folder) of a 4 KB file took "
        f"p50 {probe_before[0]:.1f} ms "
        f"/ p99 {probe_before[1]:.1f} ms before the run and p50 {probe_after[0]:.1f} / p99 {probe_after[1]:.1f} ms "
        "after it. Every score waits for one such write (shared by the scores of the same reactor turn), so "
        "this is the floor of the latency.",
        "",
        "| phase | scores acked | scores/s | samples | p50 ms | p99 ms | max ms | server p50 <= | server p99 <= |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in (("as fast as acknowledged", fast), ("1 score/judge/s", paced)):
        lines.append(f"| {name} | {r['requests']} | {r['rps']:.0f} | {r['samples']} | {r['p50']:.2f} | "
                     f"{r['p99']:.2f} | {r['max']:.2f} | {r['server_p50']:g} | {r['server_p99']:g} |")
    target_met = paced["p99"] < 5.0
    lines += [
        "",
        f"Target (p99 < 5 ms at 1 score/judge/s): {'met' if target_met else 'not met on this run'}.",
        "",
    ]
    for note in scenario.notes:
        lines += [note, ""]
    text = "\n".join(lines)
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(text)
    print(text)

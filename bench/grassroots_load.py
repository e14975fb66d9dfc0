"""Load generator for grassroots: 6 rings x (5 judges' tablets over REST + 30 SSE displays) against a real twistd.

The judges score as judge.php does (`GET /<db>/<ring>/<judge>/<score x 10>`, here below the shared
listener's `/grassroots/webservice`; the JSON answer is the acknowledgement), the displays read the
ring's server-sent events as
index.php does. Each judge's scores run through distinct values, so the first event that shows
judge j's value n after it was sent is that score's event. Latency = score sent -> the LAST display of
the ring has its event. The autopilot never fires (its delays are an hour), so the judges keep
re-scoring the current athlete: every request measures the same score -> write -> answer -> stream path.
Phases and percentiles as bench/poomsae_load.py (whose helpers this shares); report in
bench/reports/grassroots.md.

Run: python3 bench/grassroots_load.py [--rings 6 --judges 5 --displays 30 --max-seconds 10 --paced-seconds 15]
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from poomsae_load import display_seconds, pct, phase_arguments, write_probe  # noqa: E402

from harness import FreescoreProcess  # noqa: E402

SSE = "/cgi-bin/freescore/forms/grassroots/update"
REST = "/grassroots/webservice"  # the REST routes on a shared listener
ATHLETES = 8


def make_data(root: Path, rings: int, judges: int) -> None:
    names = "".join(f"Athlete {i}\t\t" + "\t".join(["-"] * 2 * judges) + "\n" for i in range(ATHLETES))
    for r in range(1, rings + 1):
        ring = root / "bench" / "forms-grassroots" / f"ring{r:02d}"
        ring.mkdir(parents=True)
        (ring / "div.b01.txt").write_text(f"# state=score\n# current=0\n# judges={judges}\n{names}")
        (ring / "progress.txt").write_text("# current=b01\n")


def value(n: int) -> int:
    """A judge's n-th score x 10: 1 ... 99, never the same twice in a row (each makes a new event)."""
    return n % 99 + 1


async def read_head(reader: asyncio.StreamReader) -> dict[str, str]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}


async def display(port: int, ring: int, arrivals: list[tuple[float, list[Any]]], deadline: float) -> None:
    """One EventSource: (arrival time, athlete 0's scores) of every event, until the deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {SSE}?tournament=bench&ring={ring} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await read_head(reader)
    buf = b""
    try:
        while time.monotonic() < deadline:
            try:
                size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 0.5)).split(b";")[0], 16)
            except TimeoutError:
                continue
            buf += (await reader.readexactly(size + 2))[:-2]
            while b"\r\n\r\n" in buf:
                event, buf = buf.split(b"\r\n\r\n", 1)
                for line in event.split(b"\r\n"):
                    if line.startswith(b"data: "):
                        ring_json = json.loads(line[6:])
                        arrivals.append((time.monotonic(), ring_json["divisions"][0]["athletes"][0]["scores"]))
    finally:
        writer.close()


def display_worker(port: int, rings: list[int], displays: int, seconds: float, conn: Any) -> None:
    """The displays of some rings in a process of their own, so receiving does not delay the judges."""
    async def run() -> dict[int, list[list[tuple[float, list[Any]]]]]:
        got: dict[int, list[list[tuple[float, list[Any]]]]] = {r: [[] for _ in range(displays)] for r in rings}
        deadline = time.monotonic() + seconds
        tasks = [asyncio.create_task(display(port, r, got[r][d], deadline)) for r in rings for d in range(displays)]
        await asyncio.sleep(1.0)
        conn.send("ready")
        await asyncio.gather(*tasks, return_exceptions=True)
        return got

    conn.send(asyncio.run(run()))


async def judge(port: int, ring: int, j: int, stop: asyncio.Event, pace: float | None,
                sent: list[tuple[int, int, int, float]]) -> int:
    """A tablet: one keep-alive connection, the next score once the last one's answer is back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if pace is not None:
        await asyncio.sleep(pace * ((ring * 7 + j) % 29) / 29)
    n = acked = 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        writer.write(f"GET {REST}/bench/{ring}/{j}/{value(n)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await read_head(reader)
        body = json.loads(await reader.readexactly(int(head["content-length"])))
        assert "error" not in body, body
        sent.append((ring, j, value(n), started))
        acked += 1
        if pace is not None:
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - started)))
    writer.close()
    return acked


def latencies(sent: list[tuple[int, int, int, float]], got: dict[int, list[list[tuple[float, list[Any]]]]]
              ) -> list[float]:
    """Per score: the latest over the ring's displays of the first event after sending that shows it."""
    out = []
    for ring, j, v, started in sent:
        last = 0.0
        for events in got.get(ring, []):
            first = next((t for t, scores in events if t >= started and scores[j] == v / 10), None)
            if first is None:
                break
            last = max(last, first)
        else:
            out.append(last - started)
    return out


def phase(port: int, args: argparse.Namespace, pace: float | None, seconds: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("fork")
    rings = list(range(1, args.rings + 1))
    workers = []
    for group in (rings[i::args.display_procs] for i in range(args.display_procs)):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=display_worker, args=(port, group, args.displays, display_seconds(args, seconds),
                                                        child))
        proc.start()
        workers.append((proc, parent))
    for _, parent in workers:
        assert parent.recv() == "ready"
    sent: list[tuple[int, int, int, float]] = []

    async def judges() -> tuple[int, float]:
        stop = asyncio.Event()
        start = time.monotonic()
        tasks = [asyncio.create_task(judge(port, r, j, stop, pace, sent)) for r in rings for j in range(args.judges)]
        await asyncio.sleep(seconds)
        stop.set()
        done = await asyncio.gather(*tasks)
        return sum(done), time.monotonic() - start

    acked, elapsed = asyncio.run(judges())
    got: dict[int, list[list[tuple[float, list[Any]]]]] = {}
    for proc, parent in workers:
        got.update(parent.recv())
        proc.join()
    lat = latencies(sent, got)
    return {"requests": acked, "rps": acked / elapsed, "samples": len(lat), "p50": pct(lat, 50),
            "p99": pct(lat, 99), "max": max(lat) * 1000 if lat else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    phase_arguments(ap, rings=6, judges=5, displays=30, report="grassroots.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_data(work / "data", args.rings, args.judges)
        config = ('[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[grassroots]\ndata = "data"\n'
                  "autopilot = [3600.0, 3601.0, 3602.0, 3603.0]\nsse_heartbeat = 15.0\n")
        probe = write_probe(work)
        fs = FreescoreProcess(config, work).start()
        try:
            fast = phase(fs.port(0), args, None, args.max_seconds)
            paced = phase(fs.port(0), args, 1.0, args.paced_seconds)
        finally:
            fs.stop()
    lines = [
        "# grassroots load benchmark", "",
        f"Command: `python3 bench/grassroots_load.py {' '.join(sys.argv[1:])}`".replace(" `", " `").rstrip(), "",
        f"Setup: {args.rings} rings x ({args.judges} judges' tablets over REST + {args.displays} SSE displays), one "
        f"real `twistd -n freescore` on 127.0.0.1, a division of {ATHLETES} athletes; the load generator "
        f"(judges in one asyncio process, displays in {args.display_procs} more) on the same machine. Every "
        "score is written atomically (fsync) before its answer and its event. Latency = the tablet sends a "
        "score -> the last of the ring's displays has the event that shows it.", "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"(1-minute load average at the end {os.getloadavg()[0]:.1f}). Disk: `write_atomic` of a 4 KB file "
        f"p50 {probe[0]:.1f} ms / p99 {probe[1]:.1f} ms before the run.", "",
        "| phase | scores acked | scores/s | samples | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|",
    ]
    for name, r in (("as fast as acknowledged", fast), ("1 score/judge/s", paced)):
        lines.append(f"| {name} | {r['requests']} | {r['rps']:.0f} | {r['samples']} | {r['p50']:.2f} | "
                     f"{r['p99']:.2f} | {r['max']:.2f} |")
    text = "\n".join(lines) + "\n"
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

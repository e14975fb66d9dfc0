"""What one worldclass score costs the server, counted (not timed): syscalls, Python calls or instructions.

Wall-clock figures on a shared machine move with everyone else's load; counts do not. This runs a
real `twistd freescore` with bench/worldclass_load.py's tournament (rings x (judges + displays)
connected), warms it up (every judge scores `--warmup` times), then sends `--scores` more scores
one at a time, each waiting for its broadcast, round-robin over the judges, and reports per score:
  --count syscalls      strace attached to the server for those scores only: calls by name
  --count calls         Python function calls (twistd --profile), the difference of a run with
                        `--scores` and one with none, so start-up and connections cancel out
  --count instructions  the same difference under valgrind's callgrind (slow: minutes)
`--repo DIR` runs another checkout's freescore (e.g. a worktree of an older commit) for an A/B;
the load is this script's either way.

Run: python3 bench/worldclass_calls.py [--count syscalls|calls|instructions] [--repo DIR]
     [--rings 4 --judges 7 --displays 20 --warmup 5 --scores 56]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from poomsae_load import REPO, server_config  # noqa: E402  (puts tests/ on sys.path for the harness)
from worldclass_load import WORLDCLASS, make_data  # noqa: E402

from harness import TWISTD, FreescoreProcess  # noqa: E402

SYSCALL = re.compile(r"^\d+\s+(\w+)\(")


Hook = Callable[[FreescoreProcess, Path], Awaitable[None]]


async def score_round_robin(base: str, args: argparse.Namespace, first: int, count: int,
                            around: tuple[Awaitable[None], Awaitable[None]] | None = None) -> None:
    """Connect every judge and display, send `count` scores one at a time, each waiting for its broadcast.

    `around`: awaited once connected, before the first score, and after the last, before the closes."""
    options: dict[str, Any] = {"max_size": None, "open_timeout": 600, "close_timeout": 60}
    rings = range(1, args.rings + 1)
    judges = [(j, await websockets.connect(f"{base}/worldclass/bench/{r}/{WORLDCLASS.judge_role(j)}", **options))
              for r in rings for j in range(args.judges)]
    displays = [await websockets.connect(f"{base}/worldclass/bench/{r}/observer", **options)
                for r in rings for _ in range(args.displays)]

    async def drain(ws: Any) -> None:
        async for _ in ws:
            pass

    readers = [asyncio.create_task(drain(ws)) for ws in displays]
    if around:
        await around[0]
    for i in range(first, first + count):
        j, ws = judges[i % len(judges)]
        await ws.send(json.dumps(WORLDCLASS.score(f"s{i}", j, args.judges, i)))
        while f'"bench":"s{i}"' not in await ws.recv():
            pass
    if around:
        await asyncio.sleep(0.5)  # the displays have the last update
        await around[1]
    for _, ws in judges + [(0, ws) for ws in displays]:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)


def session(args: argparse.Namespace, scores: int, wrap: list[str], before: Hook | None = None,
            after: Hook | None = None) -> Path:
    """One server of `--repo` (its command line prefixed by `wrap`): the warm-up, then `scores` between
    the hooks. Returns its work folder, which the caller removes."""
    work = Path(tempfile.mkdtemp(prefix="wc-calls-"))
    make_data(work / "data", args.rings, args.judges)
    config = server_config(WORLDCLASS)
    (work / "freescore.toml").write_text(config)
    argv = [*wrap, sys.executable, "-c", TWISTD, "-n", "--pidfile=", *args.twistd_options,
            "freescore", "--config", str(work / "freescore.toml")]
    fs = FreescoreProcess(config, work, argv=argv, extra_env={"PYTHONPATH": str(Path(args.repo).resolve())})
    fs.start(timeout=600)
    try:
        base = fs.url(0, "ws")
        warm = args.warmup * args.rings * args.judges
        asyncio.run(score_round_robin(base, args, 0, warm))
        hooks = (before(fs, work), after(fs, work)) if before and after else None
        asyncio.run(score_round_robin(base, args, warm, scores, hooks))
    finally:
        fs.stop(timeout=600)
    return work


def count_syscalls(args: argparse.Namespace) -> collections.Counter[str]:
    """strace attached to the server for the counted scores only."""
    tracer: list[subprocess.Popen[bytes]] = []

    async def attach(fs: FreescoreProcess, work: Path) -> None:
        assert fs.proc is not None
        tracer.append(subprocess.Popen(["strace", "-f", "-p", str(fs.proc.pid), "-o", str(work / "strace.txt")],
                                       stderr=subprocess.DEVNULL))
        await asyncio.sleep(1.0)  # strace has attached (it says so on stderr only)

    async def detach(fs: FreescoreProcess, work: Path) -> None:
        tracer[0].terminate()
        tracer[0].wait()

    work = session(args, args.scores, [], attach, detach)
    try:
        lines = (work / "strace.txt").read_text().splitlines()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return collections.Counter(m.group(1) for line in lines if (m := SYSCALL.match(line)))


def difference(args: argparse.Namespace, measure: Callable[[Path], float]) -> float:
    """`measure(work folder)` of a run with `--scores` scores minus that of one with none, per score."""
    totals = []
    for scores in (0, args.scores):
        work = session(args, scores, args.wrap)
        try:
            totals.append(measure(work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return (totals[1] - totals[0]) / args.scores


def python_calls(work: Path) -> float:
    return float(pstats.Stats(str(work / "server.prof")).total_calls)  # type: ignore[attr-defined]


def instructions(work: Path) -> float:
    text = (work / "callgrind.out").read_text()
    return float(re.search(r"^summary: (\d+)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", choices=("syscalls", "calls", "instructions"), default="syscalls")
    ap.add_argument("--repo", default=str(REPO), help="the checkout whose freescore to run (default: this one)")
    ap.add_argument("--rings", type=int, default=4)
    ap.add_argument("--judges", type=int, default=7)
    ap.add_argument("--displays", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5, help="scores per judge before counting")
    ap.add_argument("--scores", type=int, default=56)
    args = ap.parse_args()
    args.twistd_options, args.wrap = [], []
    label = f"{Path(args.repo).resolve().name}: {args.scores} scores"
    if args.count == "syscalls":
        names = count_syscalls(args)
        total = sum(names.values())
        print(f"{label}: {total / args.scores:.2f} syscalls per score")
        for name, n in names.most_common():
            if n:
                print(f"  {name:14} {n / args.scores:7.2f}")
    elif args.count == "calls":
        args.twistd_options = ["--profile=server.prof", "--profiler=cprofile", "--savestats"]
        print(f"{label}: {difference(args, python_calls):.0f} Python calls per score")
    else:
        args.wrap = ["valgrind", "--tool=callgrind", "--callgrind-out-file=callgrind.out", "--dump-instr=no"]
        print(f"{label}: {difference(args, instructions) / 1e6:.2f} M instructions per score")


if __name__ == "__main__":
    main()

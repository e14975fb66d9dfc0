"""Instructions per SCORE in a real `twistd freescore`, counted by callgrind: a figure noise cannot move.

The server runs under valgrind's callgrind (Debian package `valgrind`) on the
default epoll reactor with real sockets; this script connects `--devices`
raw WebSocket devices (and `--listeners`, each watching 16 of them), then sends
one SCORE at a time and waits for its SCORED (and its relay) before the next:
one read per reactor turn, the worst case of per-turn costs. The counters are
zeroed and dumped around two phases of different length; the difference
divided by the difference in SCOREs is the user-space instructions the server
spends per SCORE (the kernel's part is not counted). Wall-clock CPU on a shared
machine moves by 10-20 % between runs; this count moves by well under 1 %, so
it tells whether a change of the fast path saves anything.

    python3 bench/clicker_instructions.py --devices 50 --rounds 4 [--listeners 3]
    python3 bench/clicker_instructions.py --devices 50 --rounds 4 --server floor

`--server floor` counts bench/clicker_floor.py instead, the bare Twisted server
that speaks just enough of the protocol: what Twisted, the interpreter and the
socket calls cost alone, the floor under freescore's figure.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "clicker"))
sys.path.insert(0, str(REPO / "bench"))
from loadkit import add_batch_pause_option, runtime_table  # noqa: E402  (bench/ is on sys.path)

CONFIG = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[clicker]\nstate = "state"\nping_interval = 0\n'
PER_LISTENER = 16
"""Ids a listener watches: one SUBSCRIBE and one CONNECT line stay under 126 bytes."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--listeners", type=int, default=0, help=f"each watches {PER_LISTENER} devices")
    ap.add_argument("--rounds", type=int, default=4, help="SCOREs per device in the short phase (3x in the long)")
    ap.add_argument("--server", choices=["freescore", "floor"], default="freescore")
    add_batch_pause_option(ap)
    args = ap.parse_args()
    if args.listeners * PER_LISTENER > args.devices:
        ap.error(f"listeners x {PER_LISTENER} must not exceed devices")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("needs valgrind (apt-get install valgrind)")
    from clicker_raw import RawDevice  # the tests' device: handshake as the firmware does, masked frames

    from harness import TWISTD, FreescoreProcess, env

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        if args.server == "floor":
            from clicker_floor import FloorProcess

            fs: Any = FloorProcess(wrapper=valgrind, timeout=300)
        else:
            argv = [*valgrind, sys.executable, "-c", TWISTD, "-n", "--pidfile=", "freescore", "--config",
                    str(Path(tmp) / "freescore.toml")]
            config = CONFIG + runtime_table(args)
            fs = FreescoreProcess(config, Path(tmp), argv=argv, environ={**env(), "PYTHONHASHSEED": "0"}).start(300)
        try:
            devices = [RawDevice(fs.port(), timeout=120) for _ in range(args.devices)]
            ids = []
            for d in devices:
                d.send("REGISTER")
                ids.append(d.recv().split(" ")[1])
            listeners = []
            for n in range(args.listeners):
                listener = RawDevice(fs.port(), timeout=120)
                listener.send("SUBSCRIBE " + " ".join(ids[n * PER_LISTENER:(n + 1) * PER_LISTENER]))
                listener.recv()
                listeners.append(listener)
            msg = 0

            def phase(rounds: int) -> int:
                nonlocal msg
                for _ in range(rounds):
                    for k, d in enumerate(devices):
                        msg += 1
                        d.send(f"SCORE {msg} {10**15 + msg} {msg % 10}")
                        assert d.recv().startswith(f"SCORED {msg} ")
                        if k // PER_LISTENER < len(listeners):
                            assert listeners[k // PER_LISTENER].recv().startswith("SCORE ")
                return rounds * len(devices)

            def counted(rounds: int) -> tuple[int, int]:
                subprocess.run(["callgrind_control", "-z", str(fs.proc.pid)], check=True, capture_output=True)
                scores = phase(rounds)
                before = set(Path(tmp).glob("callgrind.out*"))
                subprocess.run(["callgrind_control", "-d", str(fs.proc.pid)], check=True, capture_output=True)
                deadline = time.monotonic() + 60
                while not (new := set(Path(tmp).glob("callgrind.out*")) - before) and time.monotonic() < deadline:
                    time.sleep(0.2)
                text = max(new, key=lambda p: p.stat().st_mtime).read_text(errors="replace")
                return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1)), scores

            phase(2)  # warm: every code path taken once, every cache filled
            short, n_short = counted(args.rounds)
            long, n_long = counted(args.rounds * 3)
            print(f"instructions per SCORE: {(long - short) // (n_long - n_short)} ({args.server}, "
                  f"{args.devices} devices, {args.listeners} listeners; phases {short}/{n_short}, {long}/{n_long})")
        finally:
            fs.stop(timeout=60)


if __name__ == "__main__":
    main()

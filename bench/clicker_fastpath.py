"""Python CPU per SCORE on the clicker's fast path, without the kernel and without other load.

The whole freescore (composition root, Twisted Web, Autobahn, the clicker) runs
on a memory reactor (tests/memnode.py): N devices register, M listeners
subscribe, then every device's SCORE frame (masked with a random key, as
devices do) is fed to its connection as one read, one reactor turn per
`--per-turn` reads. What is measured is the process CPU time per SCORE: the
Python the server runs for a SCORE, its acknowledgement and its relay, minus
the socket calls (the writes go to in-memory transports). On a shared machine
this figure is steady where wall-clock benchmarks are not, so it is the one to
compare changes of the fast path by; bench/clicker_load.py gives the real one.

    python3 bench/clicker_fastpath.py --devices 1000 --listeners 0 --scores 200000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))


def frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    return bytes((0x81, 0x80 | len(payload))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def acknowledged(transports) -> int:
    """The `SCORED` acknowledgements the devices' transports hold (server frames are not masked)."""
    return sum(t.value().count(b"SCORED ") for t in transports)


def run(args: argparse.Namespace) -> tuple[list[float], int]:
    """CPU µs per SCORE of each repeat, and the SCOREs the devices got acknowledged."""
    from memnode import LISTEN, Node, autobahn_clock

    with tempfile.TemporaryDirectory() as tmp:
        # Known secrets: REGISTER answers at once (a new id would be written to disk by a thread).
        secrets = {f"secret-{k}": f"{k:06d}" for k in range(args.devices)}
        (Path(tmp) / "state").mkdir()
        (Path(tmp) / "state" / "registry.json").write_text(json.dumps({"version": 1, "secrets": secrets}))
        node = Node(LISTEN + '[clicker]\nstate = "state"\nping_interval = 0\n', Path(tmp))
        with autobahn_clock(node.clock):
            node.start("clicker")
            devices = [node.websocket("/ws") for _ in range(args.devices)]
            ids = []
            for k, d in enumerate(devices):
                d.send(f"REGISTER secret-{k}")
                node.clock.advance(0)
                ids.append(d.texts()[0].split(" ")[1])
            listeners = []
            for n in range(args.listeners):
                watched = ids[n * args.per_listener:(n + 1) * args.per_listener]
                lis = node.websocket("/ws")
                lis.send(("SUBSCRIBE " if n % 2 == 0 else "LISTEN ") + " ".join(watched))
                listeners.append(lis)
            node.clock.advance(0)
            transports = [p.transport for p in devices + listeners]
            device_transports = transports[:len(devices)]
            results = []
            acked = 0
            for r in range(args.repeats):
                # Frames made beforehand: the generator's work stays out of the measurement.
                feeds = []
                for k in range(args.scores):
                    d = devices[k % len(devices)]
                    msg = r * args.scores + k + 1  # msgIds go up across repeats: none is a retry
                    feeds.append((d.proto, frame(f"SCORE {msg} {1_000_000 + msg} {msg % 10}")))
                for t in transports:
                    t.clear()
                advance = node.clock.advance
                per_turn = args.per_turn
                t0 = time.process_time()
                for k, (proto, data) in enumerate(feeds, 1):
                    proto.dataReceived(data)
                    if k % per_turn == 0:
                        advance(0)
                        if k % 10_000 == 0:
                            acked += acknowledged(device_transports)
                            for t in transports:
                                t.clear()
                advance(0)
                results.append((time.process_time() - t0) / args.scores * 1e6)
                acked += acknowledged(device_transports)
    return results, acked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    counts = {"devices": 1000, "listeners": 0, "per-listener": 20, "scores": 100_000, "repeats": 3}
    for name, default in counts.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--per-turn", type=int, default=1, help="reads (one SCORE each) per reactor turn")
    args = ap.parse_args()
    results, acked = run(args)
    print(f"Python CPU per SCORE: median {statistics.median(results):.2f} µs "
          f"(runs: {', '.join(f'{r:.2f}' for r in results)}); load average {os.getloadavg()[0]:.1f}; "
          f"{acked} of {args.scores * args.repeats} SCOREs acknowledged")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Function calls per delivery of the events fan-out, in process: one Socket.IO message to N subscribers.

Runs the real events service on tests/memnode.py (Twisted's memory reactor and
StringTransports), subscribes N Engine.IO WebSocket clients to one channel and
profiles M hub deliveries with cProfile. Call counts do not depend on how busy
the machine is, so two checkouts can be compared where CPU figures cannot:

    python3 bench/events_fanout_calls.py                          # this checkout
    python3 bench/events_fanout_calls.py --tree /path/to/another  # the same for another checkout

A fan-out that costs the same per subscriber shows the same calls per
delivery; what it costs once per message shows in calls per message.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=HERE, help="the checkout to measure (default: this one)")
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--top", type=int, default=10, help="functions to list, most called first")
    args = ap.parse_args()
    tree = args.tree.resolve()
    sys.path[:0] = [str(tree), str(tree / "tests")]
    from memnode import LISTEN, Node, autobahn_clock

    from freescore.hub import HubMessage

    table = f'[events]\nsender_token = "t"\nmax_clients = {args.clients + 10}\nrate_limit = 0\n'
    node = Node(LISTEN + table, Path(tempfile.mkdtemp(prefix="fanout-calls-")))
    with autobahn_clock(node.clock):
        node.start("events")
        service = node.service("events")
        peers = []
        for _ in range(args.clients):
            peer = node.websocket("/socket.io/?EIO=4&transport=websocket")
            peer.send("40")
            peer.send('42["set-filter",{"filter":["ch"]}]')
            peer.written()
            peers.append(peer)
        messages = [HubMessage("events:posts", 10**12 + i, {"channel": "ch", "message": {"n": i}})
                    for i in range(args.messages)]
        profile = cProfile.Profile()
        profile.enable()
        for message in messages:
            service._on_hub(message)
        node.clock.advance(0)
        profile.disable()
        missing = [p for p in peers if p.written().count(b'"n":') != args.messages]
        if missing:
            raise SystemExit(f"{len(missing)} clients did not get every message")
    stats = pstats.Stats(profile)
    deliveries = args.messages * args.clients
    print(f"{tree}: {stats.total_calls} calls for {deliveries} deliveries: "
          f"{stats.total_calls / deliveries:.3f} per delivery, {stats.total_calls / args.messages:.1f} per message")
    rows = sorted(((calls, name, where.rsplit("/", 1)[-1]) for (where, _, name), (_, calls, *_rest)
                   in stats.stats.items()), reverse=True)
    for calls, name, where in rows[:args.top]:
        print(f"  {calls:>8}  {calls / deliveries:5.2f} per delivery  {where} {name}")


if __name__ == "__main__":
    main()

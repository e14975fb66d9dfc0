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

`--cpu` measures process CPU per delivery instead (no profiler): each server
connection writes through the same direct-send path as on a real TCP socket
(`write_now`), to one end of a Unix socket pair, so the figure is the fan-out's
Python plus one real `send` per delivery, without the loopback TCP stack or
the epoll reactor. It moves less with the machine's load than a wall-clock run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=HERE, help="the checkout to measure (default: this one)")
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--top", type=int, default=10, help="functions to list, most called first")
    ap.add_argument("--cpu", action="store_true", help="CPU per delivery over real socket sends, no profiler")
    ap.add_argument("--repeats", type=int, default=7, help="--cpu: rounds of --messages, median reported")
    ap.add_argument("--no-send", action="store_true", help="--cpu: send replaced by len(): the Python only")
    ap.add_argument("--direct", action="store_true",
                    help="count calls on the direct-send path (Unix socket pairs), as --cpu measures it")
    args = ap.parse_args()
    tree = args.tree.resolve()
    sys.path[:0] = [str(tree), str(tree / "tests")]
    from memnode import LISTEN, Node, autobahn_clock

    from freescore.hub import HubMessage

    table = f'[events]\nsender_token = "t"\nmax_clients = {args.clients + 10}\nrate_limit = 0\n'
    scratch = tempfile.TemporaryDirectory(prefix="fanout-calls-")  # removed when main returns
    node = Node(LISTEN + table, Path(scratch.name))
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
        if args.cpu:
            cpu_per_delivery(service, peers, args, HubMessage)
            return
        pairs = direct_sockets(peers, False) if args.direct else []
        messages = [HubMessage("events:posts", 10**12 + i, {"channel": "ch", "message": {"n": i}})
                    for i in range(args.messages)]
        profile = cProfile.Profile()
        profile.enable()
        for message in messages:
            service._on_hub(message)
        node.clock.advance(0)
        profile.disable()
        if pairs:
            check_delivered(pairs, args.messages)
        elif any(p.written().count(b'"n":') != args.messages for p in peers):
            raise SystemExit("a client did not get every message")
    stats = pstats.Stats(profile)
    deliveries = args.messages * args.clients
    print(f"{tree}: {stats.total_calls} calls for {deliveries} deliveries: "
          f"{stats.total_calls / deliveries:.3f} per delivery, {stats.total_calls / args.messages:.1f} per message")
    rows = sorted(((calls, name, where.rsplit("/", 1)[-1]) for (where, _, name), (_, calls, *_rest)
                   in stats.stats.items()), reverse=True)
    for calls, name, where in rows[:args.top]:
        print(f"  {calls:>8}  {calls / deliveries:5.2f} per delivery  {where} {name}")


class _Direct:
    """What `write_now` reads of a plain twisted TCP connection with nothing buffered, on a real socket."""

    connected = 1
    disconnecting = 0
    _tempDataLen = 0
    dataBuffer = b""
    offset = 0

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock


class _NoSend:
    send = len


def direct_sockets(peers, no_send: bool) -> list[tuple[socket.socket, socket.socket]]:
    """Each server connection sends to one end of a Unix socket pair, as `write_now` does on TCP."""
    pairs = []
    for peer in peers:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        peer.proto._tcp = direct = _Direct(ours)
        if no_send:
            direct.socket = _NoSend()
        pairs.append((ours, theirs))
    return pairs


def check_delivered(pairs, messages: int) -> None:
    """Drain each pair's far end; every client got every message."""
    for _, theirs in pairs:
        got = b""
        while True:
            try:
                chunk = theirs.recv(1 << 20)
            except BlockingIOError:
                break
            got += chunk
        if got.count(b'"n":') != messages:
            raise SystemExit("a client did not get every message")


def cpu_per_delivery(service, peers, args, hub_message) -> None:
    pairs = direct_sockets(peers, args.no_send)
    per_delivery = []
    n = 0
    for _ in range(args.repeats):
        messages = [hub_message("events:posts", 10**12 + n + i, {"channel": "ch", "message": {"n": i}})
                    for i in range(args.messages)]
        n += args.messages
        start = time.process_time()
        for message in messages:
            service._on_hub(message)
        per_delivery.append((time.process_time() - start) / (args.messages * args.clients) * 1e6)
        if not args.no_send:
            check_delivered(pairs, args.messages)
    print(f"{args.tree}: CPU per delivery {statistics.median(per_delivery):.3f} µs (median of {args.repeats}; "
          f"range {min(per_delivery):.3f}-{max(per_delivery):.3f}), {args.clients} subscribers, "
          f"{args.messages} messages a round{', no kernel send' if args.no_send else ''}")


if __name__ == "__main__":
    main()

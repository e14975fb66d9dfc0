"""Publish -> deliver latency through RedisHub vs MemoryHub, at a few publish rates.

Starts its own redis-server on a free loopback port (Debian's, or $REDIS_SERVER),
two RedisHub "nodes" in this process (node a publishes; listeners on node a and
on node b), and a MemoryHub baseline. Each rate runs for --seconds, then drains;
bounded in count and time, loopback only. Writes bench/reports/hub.md.

    python3 bench/hub_load.py [--rates 200,1000,5000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "hub"))

if "--no-hiredis" in sys.argv:
    sys.modules["hiredis"] = None  # type: ignore[assignment]  # txredisapi falls back to its Python parser

from redisproc import RedisServer, find_redis_server  # noqa: E402
from twisted.internet import reactor, task  # noqa: E402
from twisted.internet.defer import inlineCallbacks  # noqa: E402

from freescore.hub.memory import MemoryHub  # noqa: E402
from freescore.hub.redis import RedisHub  # noqa: E402

PAYLOAD_PAD = "x" * 100  # a small score update


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


@inlineCallbacks
def run_rate(publisher, listeners: dict[str, object], rate: int, seconds: float, keep: int):
    """Publish `rate`/s for `seconds`; per listener: latencies (ms) and how many arrived."""
    channel = f"bench-{rate}-{id(publisher)}"
    sent: dict[int, float] = {}
    got: dict[str, list[float]] = {name: [] for name in listeners}
    subs = []
    for name, hub in listeners.items():
        def on_message(message, name=name):
            got[name].append((time.perf_counter() - sent[message.payload["seq"]]) * 1000)
        sub = hub.subscribe(channel, on_message)
        subs.append(sub)
        yield getattr(sub, "ready", None)
    total = int(rate * seconds)
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    started = time.perf_counter()

    def burst():
        # catch up to the schedule, so a slow tick does not lower the rate
        due = min(total, int((time.perf_counter() - started) * rate) + per_tick)
        while len(sent) < due:
            seq = len(sent)
            sent[seq] = time.perf_counter()
            publisher.publish(channel, {"seq": seq, "pad": PAYLOAD_PAD}, keep=keep)
        if len(sent) >= total:
            loop.stop()

    loop = task.LoopingCall(burst)
    yield loop.start(tick)
    elapsed = time.perf_counter() - started
    deadline = time.perf_counter() + 5
    while any(len(v) < total for v in got.values()) and time.perf_counter() < deadline:
        yield task.deferLater(reactor, 0.01, lambda: None)
    for sub in subs:
        sub.cancel()
    return {name: (lat, total, total / elapsed) for name, lat in got.items()}


@inlineCallbacks
def main(args, lines: list[str]):
    binary = find_redis_server()
    if binary is None:
        raise SystemExit("no redis-server binary (bash .ci/needs-redis.sh)")
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(binary, Path(tmp)).start()
        hubs = []
        try:
            start_ms = int(reactor.seconds() * 1000)
            memory = MemoryHub(start_ms)
            a = RedisHub(server.url, start_ms, reactor, node="a")
            b = RedisHub(server.url, start_ms, reactor, node="b")
            for hub in (a, b):
                hub.startService()
                hubs.append(hub)
            while not (a.is_up() and b.is_up()):
                yield task.deferLater(reactor, 0.01, lambda: None)
            rows = []
            for rate in rates:
                for label, publisher, listeners in (
                    ("memory", memory, {"same node": memory}),
                    ("redis", a, {"same node": a, "other node": b}),
                ):
                    result = yield run_rate(publisher, listeners, rate, args.seconds, args.keep)
                    for where, (lat, total, sent_rate) in result.items():
                        rows.append((rate, label, where, sent_rate, len(lat), total, percentile(lat, 50),
                                     percentile(lat, 99), max(lat) if lat else float("nan")))
                        print(rows[-1], flush=True)
        finally:
            for hub in hubs:
                yield hub.stopService()
            server.kill()
    lines.append("| target rate /s | hub | listener | achieved publish /s | delivered | p50 ms | p99 ms | max ms |")
    lines.append("|---:|---|---|---:|---:|---:|---:|---:|")
    for rate, label, where, sent_rate, n, total, p50, p99, worst in rows:
        lines.append(f"| {rate} | {label} | {where} | {sent_rate:.0f} | {n}/{total} | {p50:.3f} | {p99:.3f} | "
                     f"{worst:.3f} |")
    added = {}
    for rate, label, where, _s, _n, _t, p50, _p99, _w in rows:
        added.setdefault(rate, {})[(label, where)] = p50
    lines.append("")
    lines.append("Added p50 latency of the Redis path (other node minus memory hub):")
    lines.append("")
    for rate, values in added.items():
        extra = values[("redis", "other node")] - values[("memory", "same node")]
        lines.append(f"- {rate}/s: {extra:.3f} ms")


def parser_name() -> str:
    import txredisapi

    if getattr(txredisapi, "hiredis", None) is None:
        return "txredisapi's pure-Python parser (hiredis not used)"
    return f"hiredis {importlib.metadata.version('hiredis')}"


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="200,1000,5000")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--keep", type=int, default=100, help="history kept per publish (0: none)")
    parser.add_argument("--no-hiredis", action="store_true", help="use txredisapi's pure-Python reply parser")
    parser.add_argument("--report", default=str(REPO / "bench" / "reports" / "hub.md"))
    args = parser.parse_args()
    lines: list[str] = []
    failure = []

    def run():
        d = main(args, lines)
        d.addErrback(failure.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.callLater(300, reactor.stop)  # hard bound
    reactor.run()
    if failure:
        failure[0].raiseException()
    command = "python3 bench/hub_load.py " + " ".join(sys.argv[1:])
    header = [
        "# Hub: publish -> deliver latency, RedisHub vs MemoryHub",
        "",
        f"Command: `{command.strip()}` (report written by the script).",
        "",
        f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        "2 cores shared with other helpers' builds and tests at the time: figures were taken under "
        "contention and vary between runs. Redis: a local redis-server on loopback, no persistence.",
        "",
        f"Reply parser: {parser_name()}.",
        "",
        "One process, one reactor: RedisHub node a publishes (one Lua script per publish: id, "
        f"history XADD MAXLEN {args.keep}, PUBLISH); listeners on node a (delivered from the publish reply) "
        "and node b (delivered through Redis SUBSCRIBE). Latency is from the publish call to the listener "
        "call, same clock. Both nodes share the one CPU of this reactor, so node b's figures include node a's "
        "work and the Redis round trip. The publisher sends every 10 ms the messages due (e.g. 50 at "
        "5000/s), so the figures include queueing behind the rest of a burst.",
        "",
    ]
    Path(args.report).write_text("\n".join(header + lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    cli()

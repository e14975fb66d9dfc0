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
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

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


def on_latency(into: list[float]):
    """A listener that records publish -> deliver latency from the send time in the payload."""
    def listener(message) -> None:
        into.append((time.perf_counter() - message.payload["t"]) * 1000)  # CLOCK_MONOTONIC: same in every process
    return listener


@inlineCallbacks
def run_rate(publisher, listeners: dict[str, object], channel: str, rate: int, seconds: float, keep: int):
    """Publish `rate`/s for `seconds`; per listener: latencies (ms); and the achieved rate."""
    got: dict[str, list[float]] = {name: [] for name in listeners}
    subs = []
    for name, hub in listeners.items():
        sub = hub.subscribe(channel, on_latency(got[name]))
        subs.append(sub)
        yield getattr(sub, "ready", None)
    total = int(rate * seconds)
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    started = time.perf_counter()
    count = [0]

    def burst():
        # catch up to the schedule, so a slow tick does not lower the rate
        due = min(total, int((time.perf_counter() - started) * rate) + per_tick)
        while count[0] < due:
            count[0] += 1
            publisher.publish(channel, {"t": time.perf_counter(), "pad": PAYLOAD_PAD}, keep=keep)
        if count[0] >= total:
            loop.stop()

    loop = task.LoopingCall(burst)
    yield loop.start(tick)
    elapsed = time.perf_counter() - started
    deadline = time.perf_counter() + 5
    while any(len(v) < total for v in got.values()) and time.perf_counter() < deadline:
        yield task.deferLater(reactor, 0.01, lambda: None)
    for sub in subs:
        sub.cancel()
    return got, total, total / elapsed


@inlineCallbacks
def subscriber_process(url: str, channels: list[str], expected: int, outdir: Path):
    """`--subscribe`: node c in its own process; writes ready, then result.json when all arrived (or timed out)."""
    hub = RedisHub(url, int(reactor.seconds() * 1000), reactor, node="c")
    hub.startService()
    got: dict[str, list[float]] = {channel: [] for channel in channels}
    subs = [hub.subscribe(channel, on_latency(got[channel])) for channel in channels]
    for sub in subs:
        yield sub.ready
    (outdir / "ready").write_text("ok")
    deadline = time.monotonic() + 240
    while sum(map(len, got.values())) < expected and time.monotonic() < deadline:
        yield task.deferLater(reactor, 0.05, lambda: None)
    (outdir / "result.json").write_text(json.dumps(got))
    yield hub.stopService()


@inlineCallbacks
def wait_file(path: Path, timeout: float):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench subscriber process did not write {path.name}")
        yield task.deferLater(reactor, 0.05, lambda: None)


@inlineCallbacks
def main(args, lines: list[str]):
    binary = find_redis_server()
    if binary is None:
        raise SystemExit("no redis-server binary (bash .ci/needs-redis.sh)")
    rates = [int(r) for r in args.rates.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(binary, Path(tmp) / "redis").start()
        hubs = []
        outdir = Path(tmp) / "sub"
        outdir.mkdir()
        channels = [f"bench-{rate}" for rate in rates]
        expected = sum(int(rate * args.seconds) for rate in rates)
        other = subprocess.Popen([sys.executable, __file__, "--subscribe", server.url, ",".join(channels),
                                  str(expected), str(outdir)])
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
            yield wait_file(outdir / "ready", 30)
            for rate, channel in zip(rates, channels, strict=True):
                for label, publisher, listeners in (
                    ("memory", memory, {"same node": memory}),
                    ("redis", a, {"same node": a, "other node, same process": b}),
                ):
                    got, total, sent_rate = yield run_rate(publisher, listeners, channel, rate, args.seconds,
                                                           args.keep)
                    for where, lat in got.items():
                        rows.append((rate, label, where, sent_rate, lat, total))
                        print(rate, label, where, len(lat), percentile(lat, 50), flush=True)
            yield wait_file(outdir / "result.json", 30)
            result = json.loads((outdir / "result.json").read_text())
            for rate, channel in zip(rates, channels, strict=True):
                sent_rate = next(r[3] for r in rows if r[0] == rate and r[1] == "redis")
                rows.append((rate, "redis", "other node, own process", sent_rate, result[channel],
                             int(rate * args.seconds)))
        finally:
            other.kill()
            other.wait()
            for hub in hubs:
                yield hub.stopService()
            server.kill()
    rows.sort(key=lambda r: (r[0], r[1] != "memory"))
    lines.append("| target rate /s | hub | listener | achieved publish /s | delivered | p50 ms | p99 ms | max ms |")
    lines.append("|---:|---|---|---:|---:|---:|---:|---:|")
    p50s: dict[int, dict[str, float]] = {}
    for rate, label, where, sent_rate, lat, total in rows:
        p50 = percentile(lat, 50)
        p50s.setdefault(rate, {})[f"{label}/{where}"] = p50
        lines.append(f"| {rate} | {label} | {where} | {sent_rate:.0f} | {len(lat)}/{total} | {p50:.3f} | "
                     f"{percentile(lat, 99):.3f} | {max(lat) if lat else float('nan'):.3f} |")
    lines.append("")
    lines.append("Added p50 latency of the Redis path (other node in its own process minus the memory hub):")
    lines.append("")
    for rate, values in p50s.items():
        extra = values["redis/other node, own process"] - values["memory/same node"]
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
    parser.add_argument("--subscribe", nargs=4, metavar=("URL", "CHANNELS", "EXPECTED", "OUTDIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscribe:
        url, channels, expected, outdir = args.subscribe
        reactor.callWhenRunning(
            lambda: subscriber_process(url, channels.split(","), int(expected), Path(outdir)).addBoth(
                lambda _: reactor.stop()))
        reactor.run()
        return
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
        "RedisHub node a publishes (one Lua script per publish: id, "
        f"history XADD MAXLEN {args.keep}, PUBLISH). Listeners: on node a itself (delivered from the publish "
        "reply), on node b in the same process and reactor (through Redis SUBSCRIBE; shares node a's CPU), "
        "and on node c in its own process (through Redis SUBSCRIBE; the realistic cross-node figure). "
        "Latency is from the publish call to the listener call (CLOCK_MONOTONIC, the same in every "
        "process). The publisher sends every 10 ms the messages due (e.g. 50 at 5000/s), so the figures "
        "include queueing behind the rest of a burst.",
        "",
    ]
    Path(args.report).write_text("\n".join(header + lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    cli()

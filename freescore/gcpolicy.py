"""Garbage-collector policy for one long-running reactor process.

CPython's cycle collector stops the reactor while it runs, and a full pass
walks every tracked object: with 2 000 open WebSockets that is 100-200 ms in
which no frame moves. With the interpreter's thresholds (700, 10, 10) a busy
gateway made such a pass every 3 s, and those pauses were the whole of its
p99. Objects that live for one request were promoted into the old generation
by the dozens of young passes a second that 700 allocations trigger.

The policy (`[runtime]`, docs/runtime.md):

- `gc_freeze`: once the reactor runs, collect once and move what start-up
  built (modules, classes, settings) to the permanent generation, which no
  later pass walks.
- `gc_thresholds`: raised, so young passes follow real growth of the live
  set rather than the churn of requests.
- Full passes where garbage really piles up: a WebSocket whose objects form
  reference cycles leaves them behind when it closes (every connection did,
  52 objects, until the base broke Autobahn's cycle and released Twisted
  Web's channel). If it closes young, the next young pass frees them; if a
  pass promoted it first, they sit in an older generation, which the raised
  thresholds seldom collect. A full pass runs once `gc_full_after_closes` such connections (and at
  least as many as are open) have closed since the last one: the garbage
  stays proportional to the live set and the cost per close constant.
  The WebSocket base breaks the cycles every connection used to leave, so
  such a pass often finds nothing; then the next waits for twice as many
  closes (up to 64 times), until one finds garbage again.
  `gc_full_interval` is the backstop for everything else.

Every pass is timed into `freescore_gc_pause_seconds{generation}` on /metrics.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram
from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freescore.metrics import Metrics
from freescore.websocket import ConnectionRegistry

log = Logger(namespace="freescore")

PAUSE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

_frozen_once = False  # the permanent generation is per process: freeze once, even if embedded twice


MAX_BACKOFF = 64


def full_pass_due(closed: int, still_open: int, after_closes: int, backoff: int = 1) -> bool:
    """Enough closed connections (garbage) for a full pass, relative to the live set it must walk."""
    return after_closes > 0 and closed >= max(after_closes * backoff, still_open)


def next_backoff(backoff: int, closed: int, found: int) -> int:
    """After a full pass for `closed` connections that found `found` unreachable objects.

    The WebSocket base breaks the cycles a connection would leave, so usually a
    closed connection is freed at once and the pass finds almost nothing: wait
    twice as many closes next time. A pass that finds at least one object per
    close means some protocol does leave cycles: back to the configured rule.
    """
    if found >= closed:
        return 1
    return min(backoff * 2, MAX_BACKOFF)


class GcPolicy(Service):
    """Applies the thresholds and the start-up freeze, schedules full passes, times every pass."""

    name = "gc"

    def __init__(self, reactor: Any, metrics: Metrics, connections: ConnectionRegistry, settings: Any) -> None:
        self.reactor = reactor
        self.connections = connections
        self.settings = settings
        self.pauses = Histogram(
            "freescore_gc_pause_seconds", "Time the reactor stood still in a cycle-collector pass",
            ["generation"], buckets=PAUSE_BUCKETS, registry=metrics.registry,
        )
        self._by_generation = [self.pauses.labels(generation=str(g)) for g in range(3)]
        self._started = 0.0
        self._previous: tuple[int, ...] | None = None
        self._pending: Any = None
        self._backstop: LoopingCall | None = None
        self.backoff = 1
        self._pass_for_closes = 0  # closes the running pass of ours was started for
        self.last_full = 0.0
        self.frozen = 0

    def startService(self) -> None:
        super().startService()
        s = self.settings
        self._previous = gc.get_threshold()
        gc.callbacks.append(self._timed)
        if s.gc_thresholds:
            gc.set_threshold(*s.gc_thresholds)
        self.last_full = self.reactor.seconds()
        self.connections.on_close = self._closed
        log.info("freescore: gc thresholds {thresholds}, full pass after {closes} closes or every {interval} s"
                 " (0: off)", thresholds=gc.get_threshold(), closes=s.gc_full_after_closes,
                 interval=s.gc_full_interval)
        if s.gc_freeze:
            self.reactor.callWhenRunning(self._freeze_startup)
        if s.gc_full_interval > 0:
            self._backstop = LoopingCall(self._check_interval)
            self._backstop.clock = self.reactor
            self._backstop.start(min(60.0, s.gc_full_interval), now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._timed in gc.callbacks:
            gc.callbacks.remove(self._timed)
        if self._previous is not None:
            gc.set_threshold(*self._previous)
        if self._backstop is not None and self._backstop.running:
            self._backstop.stop()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self.connections.on_close = None

    def _freeze_startup(self) -> None:
        global _frozen_once
        if _frozen_once:
            return
        _frozen_once = True
        gc.collect()
        gc.freeze()
        self.frozen = gc.get_freeze_count()
        log.info("freescore: gc froze {frozen} start-up objects", frozen=self.frozen)

    def _closed(self) -> None:
        if self._pending is None and full_pass_due(
            self.connections.closed, len(self.connections.open), self.settings.gc_full_after_closes, self.backoff
        ):
            # Not inside connectionLost: the pass runs on its own reactor turn.
            self._pending = self.reactor.callLater(0, self._full_pass, "closed connections")

    def _check_interval(self) -> None:
        if self.reactor.seconds() - self.last_full >= self.settings.gc_full_interval:
            self._full_pass("interval")

    def _full_pass(self, why: str) -> None:
        self._pending = None
        closed = self.connections.closed
        self._pass_for_closes = closed if why == "closed connections" else 0
        started = time.perf_counter()
        found = gc.collect()
        self._pass_for_closes = 0
        log.info("freescore: full gc pass ({why}, {closed} closed): {found} unreachable, {ms:.1f} ms;"
                  " next after {n} closes", why=why, closed=closed, found=found,
                  ms=(time.perf_counter() - started) * 1000,
                  n=self.settings.gc_full_after_closes * self.backoff)

    def _timed(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self._by_generation[generation].observe(time.perf_counter() - self._started)
        self.connections.epoch += 1  # survivors moved out of the young generation
        if generation == 2:  # ours or the interpreter's own
            if self._pass_for_closes:
                self.backoff = next_backoff(self.backoff, self._pass_for_closes, info["collected"])
            self.connections.closed = 0
            self.last_full = self.reactor.seconds()

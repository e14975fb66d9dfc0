"""Poll pacing: under load, let ready sockets gather so one reactor turn handles many.

Twisted's epoll reactor polls again as soon as a turn ends. Under a load of many
small messages from many connections (1 000 clicker devices at 30 000 SCORE/s) a
poll found 1.9 ready sockets on average, so the process woke, polled and ran
Twisted's per-turn work about 15 000 times a second; pacing them cut its CPU per
SCORE by 16 % (docs/runtime.md, bench/reports/pollpacing.md).

While polls find, on average over the last 128, at least `batch_ready` ready
sockets per `batch_pause` (16 000 a second with the defaults), the reactor waits
`batch_pause` (never past its next timer) before each poll that follows one that
found something, so the next turn finds the sockets that became ready meanwhile.
Below that rate nothing waits: a pause would gather too little to pay for its
own sleep and wake-up, and a lone request is answered as soon as it arrives.
Under load a message waits at most `batch_pause` longer. Capacity is not lost:
as the load grows the turns grow, and the pause becomes a smaller part of each.
Two rules measured worse (bench/reports/pollpacing.md): counting the pause from
when the busy poll returned, so long turns skip it, saved much less (the process
fell back to polls of one or two sockets whenever a turn outlasted the pause);
pausing after any poll that found 4 or more sockets cost the gateway, whose
bursts are short, more CPU per operation and a higher p99.

Only Twisted's epoll reactor (the default on Linux) is paced; with another
reactor the start-up log says the setting has no effect. The reactor is the
process's: with several freescore services on one reactor (tests, embedding),
the first to start paces it (with its settings) and the last to stop restores it.
After the load drops, pacing ends with the next window of 128 polls.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from twisted.application.service import Service
from twisted.logger import Logger

from freescore.metrics import Metrics, Tally
from freescore.settings import RuntimeSettings

log = Logger(namespace="freescore")


WINDOW = 128
"""Polls over which the rate of ready sockets is measured, to turn pacing on or off."""


def pacing_due(found: int, elapsed: float, batch_ready: int, batch_pause: float) -> bool:
    """Pace while polls find, on average, at least `batch_ready` ready sockets per `batch_pause`:
    `found` over the last `elapsed` seconds. Below that rate a pause gathers too little to pay
    for itself (the gateway at 3 000 operations a second spent more CPU when it paced)."""
    return batch_pause > 0 and found > 0 and found * batch_pause >= batch_ready * elapsed


def pause_before_poll(pacing: bool, last_ready: int, batch_pause: float, timeout: float) -> float:
    """Seconds to wait before the next poll: `batch_pause` while pacing after a poll that found
    something, cut to the next timer (`timeout`, epoll's: negative when there is none)."""
    if not pacing or not last_ready:
        return 0.0
    if 0 <= timeout < batch_pause:
        return timeout
    return batch_pause


class PacingPoller:
    """Stands in for the reactor's epoll object: `poll` measures the rate of ready sockets and, while
    it is high, waits before each poll that follows one that found something.

    It replaces the reactor's `_poller`, an attribute it already has. Giving the reactor a new
    attribute (its own `doIteration`) or a new class cost 1 700 to 4 500 instructions per turn, a
    lone request's price at light load: every attribute of the reactor got slower to read once its
    instance dictionary changed shape. This costs one Python call per turn (about 1 500).
    Registration calls are the epoll object's own bound methods.
    """

    __slots__ = ("epoll", "register", "modify", "unregister", "close", "fileno", "_poll", "last_ready",
                 "batch_ready", "batch_pause", "paced", "pacing", "found", "polls", "since", "clock")

    def __init__(
        self, epoll: Any, batch_ready: int, batch_pause: float, paced: Tally,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoll = epoll
        self.register = epoll.register
        self.modify = epoll.modify
        self.unregister = epoll.unregister
        self.close = epoll.close
        self.fileno = epoll.fileno
        self._poll = epoll.poll
        self.last_ready = 0
        self.batch_ready = batch_ready
        self.batch_pause = batch_pause
        self.paced = paced
        self.clock = clock
        self.pacing = False
        self.found = 0
        self.polls = 0
        self.since = clock()

    def poll(self, timeout: float = -1, maxevents: int = -1) -> list[tuple[int, int]]:
        if self.pacing and self.last_ready:  # below the pacing rate: this one test
            pause = pause_before_poll(True, self.last_ready, self.batch_pause, timeout)
            if pause > 0:
                time.sleep(pause)
                self.paced.pending += 1
                if timeout >= 0:
                    timeout = max(0.0, timeout - pause)
        self.last_ready = 0  # an interrupted poll (EINTR) found nothing
        events = self._poll(timeout, maxevents)
        found = self.last_ready = len(events)
        self.found += found
        self.polls += 1
        if self.polls >= WINDOW:
            self.decide()
        return events

    def decide(self) -> None:
        """End a window: pace through the next one if this one's rate was high enough."""
        now = self.clock()
        self.pacing = pacing_due(self.found, now - self.since, self.batch_ready, self.batch_pause)
        self.found = self.polls = 0
        self.since = now


class _Paced:
    """What pacing changed on one reactor, to undo it."""

    def __init__(self, poller: PacingPoller) -> None:
        self.poller = poller
        self.users = 1


_paced: dict[int, _Paced] = {}
"""The reactors paced in this process, by id."""


def pacing_unavailable(reactor: Any) -> str | None:
    """Why `reactor` cannot be paced (it is not Twisted's epoll reactor), or None."""
    if id(reactor) in _paced:
        return None
    epoll = getattr(select, "epoll", None)
    if epoll is None or not isinstance(getattr(reactor, "_poller", None), epoll):
        return f"the reactor ({type(reactor).__name__}) is not Twisted's epoll reactor"
    return None


class PollPacing(Service):
    """Paces the reactor's polls while the service runs (`[runtime] batch_pause`, `batch_ready`)."""

    name = "pollpacing"

    def __init__(
        self, reactor: Any, metrics: Metrics, settings: RuntimeSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.reactor = reactor
        self.settings = settings
        self.clock = clock
        counter = Counter(
            "freescore_reactor_paced_polls", "Reactor polls delayed by [runtime] batch_pause while pacing",
            registry=metrics.registry,
        )
        self.paced = Tally(counter)
        metrics.drain.tallies.append(self.paced)
        self._mine = False

    def startService(self) -> None:
        super().startService()
        s = self.settings
        if s.batch_pause <= 0:
            log.info("freescore: poll pacing off ([runtime] batch_pause = 0)")
            return
        why = pacing_unavailable(self.reactor)
        if why is not None:
            log.info("freescore: [runtime] batch_pause has no effect: {why}", why=why)
            return
        paced = _paced.get(id(self.reactor))
        if paced is not None:
            paced.users += 1
            self._mine = True
            return
        self._install()
        self._mine = True
        log.info("freescore: poll pacing: {pause} ms before each poll while polls find {ready} or more ready"
                 " sockets per {pause} ms", pause=round(s.batch_pause * 1000, 3), ready=s.batch_ready)

    def _install(self) -> None:
        reactor = self.reactor
        poller = PacingPoller(reactor._poller, self.settings.batch_ready, self.settings.batch_pause, self.paced,
                              self.clock)
        _paced[id(reactor)] = _Paced(poller)
        reactor._poller = poller

    def stopService(self) -> None:
        super().stopService()
        if not self._mine:
            return
        self._mine = False
        paced = _paced.get(id(self.reactor))
        if paced is None:
            return
        paced.users -= 1
        if paced.users == 0:
            del _paced[id(self.reactor)]
            self.reactor._poller = paced.poller.epoll

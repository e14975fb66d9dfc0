"""The display's live stream: one server-sent-events channel per ring, with ids and a replay buffer.

Upstream's CGI re-sent the whole ring whenever a file of the tournament
changed, with the second as the id. Here each distinct state of a ring is one
event with an increasing id, sent once to every stream of that ring; a
stream that reconnects with `Last-Event-ID` gets what it missed from a
bounded buffer (or the current state, when its id has left the buffer).
Comment lines keep idle streams open, and on each of those beats the ring
is re-read, so a change another program wrote to the files is streamed too.
A stream that stops reading is dropped once more than `max_unsent` bytes
still wait for it when the next event or beat comes, so it cannot grow the
server's memory (the display reconnects and catches up with `Last-Event-ID`).
A ring's replay buffer lives while a stream watches it and `keep` seconds
after the last one left (a display that reconnects within that catches up);
then a beat drops it, so rings of made-up tournaments (`create_tournaments`)
do not pile up. A ring nobody streams gets no buffer at all.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freescore.grassroots import wire

log = Logger(namespace="freescore.grassroots")


@dataclass
class RingStream:
    events: collections.deque[tuple[int, bytes]]
    data: str | None = None
    streams: list[Any] = field(default_factory=list)
    idle_since: float = 0.0
    """When it last had no stream (its creation, or its last stream leaving); read only while it has none."""


def stale_rings(rings: Mapping[Hashable, RingStream], now: float, keep: float) -> list[Hashable]:
    """Rings with no stream for at least `keep` seconds: their replay buffers can go."""
    return [key for key, ring in rings.items() if not ring.streams and now - ring.idle_since >= keep]


def _unbounded(stream: Any) -> int:
    return 0


class RingEvents:
    """SSE fan-out by ring. `snapshot(key)` gives the ring's event data now (JSON text).

    `unsent(stream)` says how many bytes written to a stream wait to be sent,
    `drop(stream)` cuts a stream that has more than `max_unsent` of them.
    """

    def __init__(self, reactor: Any, snapshot: Callable[[Hashable], str], replay: int, heartbeat: float,
                 max_unsent: int = 0, unsent: Callable[[Any], int] = _unbounded,
                 drop: Callable[[Any], None] | None = None, keep: float | None = None) -> None:
        self.reactor = reactor
        self.snapshot = snapshot
        self.replay = replay
        self.max_unsent, self.unsent, self.drop = max_unsent, unsent, drop  # the slow-consumer bound
        self.rings: dict[Hashable, RingStream] = {}
        self._ids = itertools.count(int(time.time() * 1000))  # above any id a previous process handed out
        self._beat = LoopingCall(self.beat)
        self._beat.clock = reactor
        self.heartbeat = heartbeat
        self.keep = max(60.0, 4 * heartbeat) if keep is None else keep
        """Seconds a ring's replay buffer outlives its last stream."""

    def start(self) -> None:
        if self.heartbeat > 0:
            self._beat.start(self.heartbeat, now=False)

    def stop(self) -> None:
        if self._beat.running:
            self._beat.stop()
        for ring in self.rings.values():
            for request in list(ring.streams):
                request.finish()

    def _ring(self, key: Hashable) -> RingStream:
        ring = self.rings.get(key)
        if ring is None:
            ring = self.rings[key] = RingStream(collections.deque(maxlen=self.replay),
                                                idle_since=self.reactor.seconds())
        return ring

    def _left(self, ring: RingStream, request: Any) -> None:
        ring.streams.remove(request)
        if not ring.streams:
            ring.idle_since = self.reactor.seconds()

    def changed(self, key: Hashable, data: str | None = None) -> None:
        """The ring may have changed: a new event for its streams if its data differs from the last one."""
        if data is None:
            ring = self.rings.get(key)
            if ring is None:
                return  # nobody streams it: no buffer
            if not ring.streams:
                ring.data = None  # nobody is watching: the next subscriber gets the state then, as a new event
                return
            data = self.snapshot(key)
        else:
            ring = self._ring(key)
        if data == ring.data:
            return
        ring.data = data
        event_id = next(self._ids)
        event = wire.sse_event(event_id, data)
        ring.events.append((event_id, event))
        for request in list(ring.streams):
            self._send(key, ring, request, event)

    def subscribe(self, key: Hashable, request: Any, last_id: int | None) -> None:
        ring = self._ring(key)
        self.changed(key, self.snapshot(key))
        ids = [i for i, _ in ring.events]
        if last_id is not None and last_id in ids:
            missed = [event for i, event in ring.events if i > last_id]
        else:
            missed = [ring.events[-1][1]]
        request.write(b"".join(missed) if missed else wire.SSE_HEARTBEAT)
        ring.streams.append(request)

    def unsubscribe(self, key: Hashable, request: Any) -> None:
        ring = self.rings.get(key)
        if ring is not None and request in ring.streams:
            self._left(ring, request)

    def beat(self) -> None:
        for key, ring in list(self.rings.items()):
            if not ring.streams:
                continue
            try:
                self.changed(key)
            except Exception:
                log.failure("grassroots: re-reading ring {key} for its streams failed", key=key)
            for request in list(ring.streams):
                self._send(key, ring, request, wire.SSE_HEARTBEAT)
        for key in stale_rings(self.rings, self.reactor.seconds(), self.keep):
            del self.rings[key]

    def _send(self, key: Hashable, ring: RingStream, request: Any, data: bytes) -> None:
        """Write to one stream, unless what it has not read yet is over the bound: then drop it."""
        waiting = self.unsent(request) if self.max_unsent else 0
        if waiting <= self.max_unsent or self.drop is None:
            request.write(data)
            return
        log.info("grassroots: SSE stream of ring {key} too slow ({waiting} bytes unsent), dropped",
                 key=key, waiting=waiting)
        self._left(ring, request)
        self.drop(request)

    def count(self) -> int:
        return sum(len(r.streams) for r in self.rings.values())

"""The one vocabulary a logic layer answers in: typed effects over opaque connection ids.

A `logic.py` never holds a transport, a protocol object or a timer. It gets
connection ids (`ConnId`, strings the adapter hands out) and returns a list of
effects; the adapter's one `apply` loop performs them in order (h11/wsproto
style: the logic decides, the caller does the I/O). Frames inside effects are
whatever the protocol's wire layer produced (text, bytes, or a JSON-able
value the adapter encodes once).

    Send(to, frame)              one frame to one connection
    Broadcast(group, frame)      one frame to every connection of a group (framed once)
    Publish(channel, message)    a message into the hub (other nodes, other services)
    Close(to, code, reason)      close one connection with a `CloseCode`
    Arm(key, delay, payload)     (re)arm the timer `key`; when it fires the adapter hands `payload` back to logic
    Cancel(key)                  cancel the timer `key` if armed

`Effects` is a list with one-word helpers so logic reads as prose
(`fx.send(cid, frame)`). `Connections` maps ids to the adapter's objects and
`apply_effects` dispatches each effect to the adapter's handler; both are pure
Python so logic tests can use them too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, NewType, Protocol, TypeVar

from freescore.wireformat import CloseCode

ConnId = NewType("ConnId", str)

# The effects are slotted dataclasses, not frozen ones: one is made for nearly every message
# (a clicker SCORE's reply), and a frozen dataclass's __init__ costs about twice as much (one
# object.__setattr__ per field). Nothing changes an effect once logic has returned it.

@dataclass(slots=True)
class Send:
    to: ConnId
    frame: Any


@dataclass(slots=True)
class Broadcast:
    group: Hashable
    frame: Any
    exclude: ConnId | None = None


@dataclass(slots=True)
class Publish:
    channel: str
    message: Any


@dataclass(slots=True)
class Close:
    to: ConnId
    code: CloseCode
    reason: str = ""


@dataclass(slots=True)
class Arm:
    key: Hashable
    delay: float
    payload: Any = None


@dataclass(slots=True)
class Cancel:
    key: Hashable


Effect = Send | Broadcast | Publish | Close | Arm | Cancel


class Effects(list[Effect]):
    """What one call into logic decided, in the order it must happen."""

    def send(self, to: ConnId, frame: Any) -> None:
        self.append(Send(to, frame))

    def broadcast(self, group: Hashable, frame: Any, exclude: ConnId | None = None) -> None:
        self.append(Broadcast(group, frame, exclude))

    def publish(self, channel: str, message: Any) -> None:
        self.append(Publish(channel, message))

    def close(self, to: ConnId, code: CloseCode, reason: str = "") -> None:
        self.append(Close(to, code, reason))

    def arm(self, key: Hashable, delay: float, payload: Any = None) -> None:
        self.append(Arm(key, delay, payload))

    def cancel(self, key: Hashable) -> None:
        self.append(Cancel(key))


class EffectHandler(Protocol):
    """What an adapter implements; `apply_effects` calls one method per effect."""

    def do_send(self, effect: Send) -> None: ...
    def do_broadcast(self, effect: Broadcast) -> None: ...
    def do_publish(self, effect: Publish) -> None: ...
    def do_close(self, effect: Close) -> None: ...
    def do_arm(self, effect: Arm) -> None: ...
    def do_cancel(self, effect: Cancel) -> None: ...


_DISPATCH: dict[type, Callable[[EffectHandler, Any], None]] = {
    Send: lambda h, e: h.do_send(e),
    Broadcast: lambda h, e: h.do_broadcast(e),
    Publish: lambda h, e: h.do_publish(e),
    Close: lambda h, e: h.do_close(e),
    Arm: lambda h, e: h.do_arm(e),
    Cancel: lambda h, e: h.do_cancel(e),
}


def apply_effects(handler: EffectHandler, effects: Iterable[Effect]) -> None:
    """The one loop an adapter runs over what logic returned, in order."""
    for effect in effects:
        _DISPATCH[type(effect)](handler, effect)


class Peer(Protocol):
    """A connection as `PeerEffects` sees it: whatever an id stands for in one adapter."""

    def send_frame(self, frame: Any) -> None: ...
    def end(self, code: CloseCode, reason: str) -> None: ...


class PeerEffects:
    """`Send`, `Close`, `Arm` and `Cancel` for an adapter whose connections are `Peer`s found by id.

    A subclass gives `peer(cid)` (None once it is gone: the effect is dropped),
    `timers` (a `Timers`), `fired(key, payload)` (an armed timer went off) and
    whatever `Broadcast`/`Publish` it applies; one its logic never returns raises.
    """

    timers: Timers

    def peer(self, cid: ConnId) -> Peer | None:
        raise NotImplementedError

    def fired(self, key: Hashable, payload: Any) -> None:
        raise NotImplementedError

    def do_send(self, effect: Send) -> None:
        peer = self.peer(effect.to)
        if peer is not None:
            peer.send_frame(effect.frame)

    def do_close(self, effect: Close) -> None:
        peer = self.peer(effect.to)
        if peer is not None:
            peer.end(effect.code, effect.reason)

    def do_arm(self, effect: Arm) -> None:
        key, payload = effect.key, effect.payload
        self.timers.arm(key, effect.delay, lambda: self.fired(key, payload))

    def do_cancel(self, effect: Cancel) -> None:
        self.timers.cancel(effect.key)

    def do_broadcast(self, effect: Broadcast) -> None:
        raise TypeError(f"{type(self).__name__}'s logic broadcasts nothing")

    def do_publish(self, effect: Publish) -> None:
        raise TypeError(f"{type(self).__name__}'s logic publishes nothing")


C = TypeVar("C")


class Connections(Generic[C]):
    """Opaque ids for an adapter's connection objects; logic only ever sees the ids."""

    def __init__(self, prefix: str = "c") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)
        self._by_id: dict[ConnId, C] = {}
        self.get: Callable[[ConnId], C | None] = self._by_id.get
        """The object of an id, or None: the dict's own `get` (no Python call; every Send resolves with it)."""

    def add(self, conn: C) -> ConnId:
        cid = ConnId(f"{self._prefix}{next(self._counter)}")
        self._by_id[cid] = conn
        return cid

    def remove(self, cid: ConnId) -> C | None:
        return self._by_id.pop(cid, None)

    def resolve(self, cids: Iterable[ConnId]) -> list[C]:
        """The objects of those ids still here, in one call: a `Broadcast` resolves its group with it."""
        by_id = self._by_id
        return [by_id[cid] for cid in cids if cid in by_id]

    def __contains__(self, cid: object) -> bool:
        return cid in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[ConnId]:
        return iter(list(self._by_id))


class Timers:
    """Keyed one-shot timers for `Arm`/`Cancel`: re-arming a key replaces its call.

    `clock` is anything with `callLater` (the reactor, or a `task.Clock` in tests).
    """

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._calls: dict[Hashable, Any] = {}

    def arm(self, key: Hashable, delay: float, fire: Callable[[], None]) -> None:
        self.cancel(key)

        def run() -> None:
            self._calls.pop(key, None)
            fire()

        self._calls[key] = self._clock.callLater(delay, run)

    def cancel(self, key: Hashable) -> bool:
        call = self._calls.pop(key, None)
        if call is not None and call.active():
            call.cancel()
            return True
        return False

    def armed(self, key: Hashable) -> bool:
        return key in self._calls

    def keys(self) -> list[Hashable]:
        """The armed keys (a copy: cancelling while iterating is fine)."""
        return list(self._calls)

    def cancel_all(self) -> None:
        for key in list(self._calls):
            self.cancel(key)

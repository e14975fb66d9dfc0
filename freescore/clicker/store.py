"""The registry file: written atomically before any REGISTERED that depends on it.

Writes run in the reactor's thread pool and are grouped: registrations that
arrive while a write is in flight all wait for the next one, so a burst of N
new devices costs a few writes, not N, and SCOREs keep flowing meanwhile.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from freescore.clicker.logic import ID_SPACE, IdsExhausted, Registration, Registry, _new_secret
from freescore.persist import write_atomic

FILENAME = "registry.json"


def load_registry(folder: Path) -> Registry:
    """Read `folder/registry.json` (creating the folder); empty when there is none yet.

    Raises OSError or logic.CorruptRegistry.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILENAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Registry()
    return Registry.load(data)


class RegistryStore:
    def __init__(self, folder: Path, registry: Registry, reactor: Any, threaded: bool = True) -> None:
        self.path = folder / FILENAME
        self.registry = registry
        self.reactor = reactor
        self.threaded = threaded
        self.writes = 0
        self._waiting: list[Deferred[None]] = []
        self._in_flight: list[Deferred[None]] | None = None
        self._idle: list[Deferred[None]] = []

    def commit(self) -> Deferred[None]:
        """Fire once the registry as it is now is on disk (errback if the write failed)."""
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        if self._in_flight is None:
            self._flush()
        return d

    def idle(self) -> Deferred[None]:
        """Fire when no write is in flight or queued (for a clean stop)."""
        if self._in_flight is None and not self._waiting:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idle.append(d)
        return d

    def _flush(self) -> None:
        waiters, self._waiting = self._waiting, []
        self._in_flight = waiters
        data = self.registry.dump()
        if self.threaded:
            write = deferToThreadPool(self.reactor, self.reactor.getThreadPool(), write_atomic, self.path, data)
        else:
            write = Deferred()
            try:
                write_atomic(self.path, data)
                write.callback(None)
            except Exception:
                write.errback(Failure())
        write.addBoth(self._written, waiters)

    def _written(self, result: Any, waiters: list[Deferred[None]]) -> None:
        self._in_flight = None
        self.writes += 1
        for d in waiters:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(None)
        if self._waiting:
            self._flush()
        elif self._idle:
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)


class HubRegistry:
    """secret -> id in the hub's shared store, so every node knows every device (Redis hub).

    Keys: `clicker:secret:<secret>` -> id and `clicker:id:<id>` -> secret. An id
    is taken when its key exists. The hub has no compare-and-set, so two nodes
    drawing the same random id in the same instant could both take it; with
    1,000,000 ids and registrations spread in time that is very unlikely, and
    it is the one guarantee weaker than with the file registry.
    """

    PREFIX = "clicker:"

    def __init__(self, hub: Any, rng: random.Random | None = None,
                 new_secret: Callable[[], str] = _new_secret, tries: int = 64) -> None:
        self.hub = hub
        self._rng = rng or random.SystemRandom()
        self._new_secret = new_secret
        self.tries = tries

    @inlineCallbacks
    def register(self, secret: str) -> Any:
        """Deferred Registration; the keys are set (as far as the hub confirms) before it fires."""
        if secret:
            known = yield self.hub.get(self.PREFIX + "secret:" + secret)
            if known is not None:
                return Registration(known, secret, False)
        for _ in range(self.tries):
            candidate = f"{self._rng.randrange(ID_SPACE):06d}"
            holder = yield self.hub.get(self.PREFIX + "id:" + candidate)
            if holder is None:
                break
        else:
            raise IdsExhausted(f"no free clicker id found in {self.tries} random draws")
        fresh = self._new_secret()
        yield gatherResults([
            self.hub.set(self.PREFIX + "id:" + candidate, fresh),
            self.hub.set(self.PREFIX + "secret:" + fresh, candidate),
        ], consumeErrors=True)
        return Registration(candidate, fresh, True)

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

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from freescore.clicker.logic import ID_SPACE, IdsExhausted, Refused, Registration, Registry, _new_secret
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
    is taken when its key exists. The hub has no compare-and-set: an id is
    claimed by setting its key and reading it back, so two nodes both win only
    by drawing the same random id (1 in 1,000,000) within one round trip of
    each other; that is the one guarantee weaker than with the file registry.

    `local` (this node's file registry) is consulted for secrets the hub does
    not know, so devices registered before the node joined the hub keep their
    ids; they are written into the hub then.
    """

    PREFIX = "clicker:"

    def __init__(self, hub: Any, rng: random.Random | None = None,
                 new_secret: Callable[[], str] = _new_secret, tries: int = 64,
                 local: Registry | None = None) -> None:
        self.hub = hub
        self._rng = rng or random.SystemRandom()
        self._new_secret = new_secret
        self.tries = tries
        self.local = local

    def _id_key(self, device_id: str) -> str:
        return self.PREFIX + "id:" + device_id

    def _secret_key(self, secret: str) -> str:
        return self.PREFIX + "secret:" + secret

    @inlineCallbacks
    def register(self, secret: str, admit: Callable[[], Refused | None] | None = None) -> Any:
        """Deferred Registration; the keys are set (as far as the hub confirms) before it fires.

        `admit` is asked before a new id is made; what it refuses with is the result.
        """
        if secret:
            known = yield self.hub.get(self._secret_key(secret))
            if _is_id(known):
                return Registration(known, secret, False)
            old = self.local.lookup(secret) if self.local is not None else None
            if old is not None:
                holder = yield self.hub.get(self._id_key(old))
                if holder in (None, secret):
                    yield self.hub.set(self._id_key(old), secret)
                    yield self.hub.set(self._secret_key(secret), old)
                    return Registration(old, secret, False)
        refused = admit() if admit is not None else None
        if refused is not None:
            return refused
        for _ in range(self.tries):
            candidate = f"{self._rng.randrange(ID_SPACE):06d}"
            if self.local is not None and candidate in self.local.allocated:
                continue
            if (yield self.hub.get(self._id_key(candidate))) is not None:
                continue
            fresh = self._new_secret()
            yield self.hub.set(self._id_key(candidate), fresh)
            if (yield self.hub.get(self._id_key(candidate))) != fresh:
                continue  # another node claimed it in the same instant
            yield self.hub.set(self._secret_key(fresh), candidate)
            return Registration(candidate, fresh, True)
        raise IdsExhausted(f"no free clicker id found in {self.tries} random draws")


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 6 and value.isascii() and value.isdigit()

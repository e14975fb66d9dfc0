"""The registry file: written atomically before any REGISTERED that depends on it.

Writes run in the reactor's thread pool and are grouped: registrations that
arrive while a write is in flight all wait for the next one, so a burst of N
new devices costs a few writes, not N, and SCOREs keep flowing meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from freescore.clicker.logic import Registry
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

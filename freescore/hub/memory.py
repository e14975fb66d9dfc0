"""The embedded hub: one process, no backplane."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from freescore.hub import HubMessage, Listener

log = Logger()


class _Subscription:
    def __init__(self, hub: "MemoryHub", channel: str, listener: Listener) -> None:
        self._hub = hub
        self._channel = channel
        self._listener = listener
        self.ready: Deferred[None] = succeed(None)

    def cancel(self) -> None:
        listeners = self._hub._listeners.get(self._channel)
        if listeners is not None:
            listeners.pop(id(self), None)
            if not listeners:
                del self._hub._listeners[self._channel]


class MemoryHub:
    """Delivers synchronously to local listeners; history and presence in dicts."""

    def __init__(self, start_ms: int, node: str = "local") -> None:
        self.node = node
        self._last_id = start_ms - 1
        self._listeners: dict[str, dict[int, Listener]] = {}
        self._history: dict[str, deque[HubMessage]] = {}
        self._presence: dict[str, dict[str, Any]] = defaultdict(dict)
        self._store: dict[str, str] = {}

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def publish(self, channel: str, payload: Any, *, keep: int = 0) -> Deferred[HubMessage]:
        message = HubMessage(channel, self._next_id(), payload)
        if keep > 0:
            kept = self._history.get(channel)
            if kept is None or kept.maxlen != keep:
                kept = self._history[channel] = deque(kept or (), maxlen=keep)
            kept.append(message)
        for listener in list(self._listeners.get(channel, {}).values()):
            try:
                listener(message)
            except Exception:
                log.failure("hub listener on {channel} failed", channel=channel)
        return succeed(message)

    def subscribe(self, channel: str, listener: Listener) -> _Subscription:
        sub = _Subscription(self, channel, listener)
        self._listeners.setdefault(channel, {})[id(sub)] = listener
        return sub

    def history(self, channel: str, after: int | None = None, limit: int | None = None) -> Deferred[list[HubMessage]]:
        kept = list(self._history.get(channel, ()))
        if after is not None:
            kept = [m for m in kept if m.id > after]
        if limit is not None:
            kept = kept[-limit:] if limit > 0 else []
        return succeed(kept)

    def join(self, space: str, member: str, info: Any = None) -> Deferred[None]:
        self._presence[space][member] = info
        return succeed(None)

    def leave(self, space: str, member: str) -> Deferred[None]:
        members = self._presence.get(space)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._presence[space]
        return succeed(None)

    def members(self, space: str) -> Deferred[dict[str, Any]]:
        return succeed(dict(self._presence.get(space, {})))

    def member(self, space: str, member: str) -> Deferred[Any | None]:
        return succeed(self._presence.get(space, {}).get(member))

    def get(self, key: str) -> Deferred[str | None]:
        return succeed(self._store.get(key))

    def set(self, key: str, value: str) -> Deferred[None]:
        self._store[key] = value
        return succeed(None)

    def is_up(self) -> bool:
        return True

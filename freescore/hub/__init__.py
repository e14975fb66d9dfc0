"""The fan-out core every protocol uses.

A hub carries messages on named channels to the listeners subscribed on this
node (and, with the Redis hub, on every node), keeps a bounded history per
channel with ids that only increase, and tracks presence: which members are in
a space, on which node.

Every method that may cross the network returns a Deferred, so the memory hub
and the Redis hub are interchangeable. `subscribe` is local bookkeeping and
returns at once; delivery happens later, never inside `publish`'s caller stack
for the Redis hub, and synchronously for the memory hub (do not depend on
either).

Payloads are JSON-serialisable values (the Redis hub encodes them once per
publish). A protocol should subscribe once per channel per node and fan out
to its own connections with one prepared frame, not subscribe per connection
when many connections share a channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred


@dataclass(frozen=True)
class HubMessage:
    channel: str
    id: int
    payload: Any


Listener = Callable[[HubMessage], None]


class Subscription(Protocol):
    ready: Deferred[None]
    """Fires once the backplane confirms the subscription (at once for the memory hub):
    messages published after it fires reach the listener."""

    def cancel(self) -> None: ...


class Hub(Protocol):
    node: str

    def publish(self, channel: str, payload: Any, *, keep: int = 0) -> Deferred[HubMessage]:
        """Send `payload` to every subscriber of `channel`.

        `keep > 0` also appends it to the channel's history, trimmed to the
        newest `keep` entries. The returned message carries the id the hub
        assigned: ids increase across all channels and nodes and start at the
        hub's start-up time in milliseconds.
        """
        ...

    def subscribe(self, channel: str, listener: Listener) -> Subscription: ...

    def history(self, channel: str, after: int | None = None, limit: int | None = None) -> Deferred[list[HubMessage]]:
        """Kept messages with id > `after`, oldest first, at most the newest `limit`."""
        ...

    def join(self, space: str, member: str, info: Any = None) -> Deferred[None]:
        """Mark `member` present in `space` (held by this node)."""
        ...

    def leave(self, space: str, member: str) -> Deferred[None]: ...

    def members(self, space: str) -> Deferred[dict[str, Any]]:
        """Present members of `space` with their info, on every node."""
        ...

    def member(self, space: str, member: str) -> Deferred[Any | None]:
        """The info of one present member of `space` (any node), None if absent.

        Cheap where `members()` is not: the Redis hub reads one hash field
        instead of the whole space. A member joined with info None is
        indistinguishable from an absent one, so join with an info when the
        difference matters.
        """
        ...

    def get(self, key: str) -> Deferred[str | None]:
        """Shared small key-value store (e.g. clicker secrets when Redis is on)."""
        ...

    def set(self, key: str, value: str) -> Deferred[None]: ...

    def is_up(self) -> bool:
        """False while the backplane is unreachable (reported on /status)."""
        ...

"""Topic subscriptions: which connections a message with topic `t` goes to, and what a browser's frame does.

Patterns are indexed by their key (the pattern with every `*` removed), so a
message costs one dict lookup per distinct key length (non-strict) or one
lookup (strict), however many connections are subscribed. A connection gets
a message at most once, however many of its patterns match.

`Bus` holds the rules over connection ids and answers in the kit's effects:
a message is one `Broadcast` of its envelope to the ids it matches, a
browser's publish (with `client2server`) a `Publish`, a slow consumer a `Close`.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from typing import Generic, TypeVar

from freescore.effects import Broadcast, ConnId, Effects
from freescore.fedmsg import wire
from freescore.wireformat import CloseCode

CHANNEL = "fedmsg:bus"
"""The hub channel every message goes through once, whatever its source."""
SLOW_CONSUMER = "slow consumer"

Conn = TypeVar("Conn", bound=Hashable)


def pattern_key(pattern: str) -> str:
    """The matching key: the pattern with every `*` removed (the only wildcard)."""
    return pattern.replace("*", "")


def matches(pattern: str, topic: str, strict: bool) -> bool:
    """The reference rule (spec §3); the index must agree with it."""
    key = pattern_key(pattern)
    if strict:
        if key == "" and pattern != "":
            return True  # deliberate deviation: `*` matches all in strict mode too
        return pattern != "" and topic == key
    return topic.startswith(key)


class Subscribed(enum.Enum):
    ADDED = "added"
    ALREADY = "already"
    LIMIT = "limit"


class SubscriptionIndex(Generic[Conn]):
    """Connections' patterns, indexed by key for matching without scanning subscribers."""

    def __init__(self, strict: bool = False, max_patterns: int = 256) -> None:
        self.strict = strict
        self.max_patterns = max_patterns
        self._patterns: dict[Conn, set[str]] = {}
        # key -> connection -> how many of its patterns have that key
        self._by_key: dict[str, dict[Conn, int]] = {}
        self._all: dict[Conn, int] = {}  # strict mode: patterns made only of `*`
        self._length_count: dict[int, int] = {}
        self._lengths: list[int] = []

    # -- bookkeeping ---------------------------------------------------------
    def _slot(self, pattern: str) -> tuple[dict[Conn, int] | None, str | None]:
        """Where a pattern is counted: (the match-all table, None) or (None, key); (None, None) = never matches."""
        key = pattern_key(pattern)
        if self.strict:
            if pattern == "":
                return None, None
            if key == "":
                return self._all, None
        return None, key

    def subscribe(self, conn: Conn, pattern: str) -> Subscribed:
        patterns = self._patterns.get(conn)
        if patterns is not None and pattern in patterns:
            return Subscribed.ALREADY
        if len(patterns or ()) >= self.max_patterns:
            return Subscribed.LIMIT
        if patterns is None:
            patterns = self._patterns[conn] = set()
        patterns.add(pattern)
        table, key = self._slot(pattern)
        if table is not None:
            table[conn] = table.get(conn, 0) + 1
        elif key is not None:
            conns = self._by_key.get(key)
            if conns is None:
                conns = self._by_key[key] = {}
                self._add_length(len(key))
            conns[conn] = conns.get(conn, 0) + 1
        return Subscribed.ADDED

    def unsubscribe(self, conn: Conn, pattern: str) -> bool:
        patterns = self._patterns.get(conn)
        if not patterns or pattern not in patterns:
            return False
        patterns.discard(pattern)
        if not patterns:
            del self._patterns[conn]
        table, key = self._slot(pattern)
        if table is not None:
            _decrement(table, conn)
        elif key is not None:
            conns = self._by_key[key]
            _decrement(conns, conn)
            if not conns:
                del self._by_key[key]
                self._remove_length(len(key))
        return True

    def remove(self, conn: Conn) -> None:
        """Forget a connection (it closed)."""
        for pattern in list(self._patterns.get(conn, ())):
            self.unsubscribe(conn, pattern)
        self._patterns.pop(conn, None)

    def _add_length(self, n: int) -> None:
        count = self._length_count.get(n, 0)
        self._length_count[n] = count + 1
        if count == 0:
            self._lengths = sorted(self._length_count)

    def _remove_length(self, n: int) -> None:
        count = self._length_count[n] - 1
        if count:
            self._length_count[n] = count
        else:
            del self._length_count[n]
            self._lengths = sorted(self._length_count)

    # -- queries ---------------------------------------------------------------
    def patterns(self, conn: Conn) -> frozenset[str]:
        return frozenset(self._patterns.get(conn, ()))

    def connections(self) -> int:
        return len(self._patterns)

    def keys(self) -> frozenset[str]:
        """Distinct keys in use (for ZeroMQ-level reference counting and tests)."""
        return frozenset(self._by_key)

    def match(self, topic: str) -> set[Conn]:
        """Every connection with at least one pattern matching `topic`, each once."""
        found: set[Conn] = set()
        if self.strict:
            found.update(self._all)
            conns = self._by_key.get(topic)
            if conns:
                found.update(conns)
            return found
        by_key = self._by_key
        size = len(topic)
        for n in self._lengths:
            if n > size:
                break
            conns = by_key.get(topic[:n])
            if conns:
                found.update(conns)
        return found


def _decrement(counts: dict, conn: Hashable) -> None:
    left = counts[conn] - 1
    if left:
        counts[conn] = left
    else:
        del counts[conn]


class Answer(Effects):
    """The effects of a browser's frame, and what the adapter logs: a pattern over the limit, a publish dropped."""

    limited = False
    dropped = False


class Bus:
    """fedmsg's rules over connection ids: subscriptions, browsers' frames, who gets each message."""

    def __init__(self, strict: bool = False, max_patterns: int = 256, client2server: bool = False) -> None:
        self.index: SubscriptionIndex[ConnId] = SubscriptionIndex(strict, max_patterns)
        self.client2server = client2server
        self.closing: set[ConnId] = set()
        """Slow consumers being closed: their frames change nothing any more."""

    def frame(self, cid: ConnId, frame: wire.ClientFrame) -> Answer:
        answer = Answer()
        if isinstance(frame, wire.Subscribe):
            if cid not in self.closing and self.index.subscribe(cid, frame.pattern) is Subscribed.LIMIT:
                answer.limited = True
        elif isinstance(frame, wire.Unsubscribe):
            self.index.unsubscribe(cid, frame.pattern)
        elif self.client2server:
            answer.publish(CHANNEL, {"topic": frame.topic, "body": frame.body_text})
        else:
            answer.dropped = True
        return answer

    def deliver(self, topic: str, body_text: str) -> Effects:
        """A message on the hub channel: its envelope, built once, to every id it matches (one effect)."""
        fx = Effects()
        matched = self.index.match(topic)
        if matched:
            fx.append(Broadcast(tuple(matched), wire.format_envelope(topic, body_text)))
        return fx

    def too_slow(self, cid: ConnId) -> Effects:
        """More unsent than `max_outbound_buffer` after a write: no more messages, close 1013."""
        self.closing.add(cid)
        self.index.remove(cid)
        fx = Effects()
        fx.close(cid, CloseCode.TRY_AGAIN_LATER, SLOW_CONSUMER)
        return fx

    def gone(self, cid: ConnId) -> None:
        self.index.remove(cid)
        self.closing.discard(cid)

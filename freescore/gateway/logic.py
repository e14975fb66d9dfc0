"""The gateway's state and rules: connection records, timers, the PUT backlog, push commands.

Plain Python with time passed in, so each rule can be tested without a
network or a reactor. The adapter asks; this module decides, in the kit's
effects where a decision reaches a connection (a connection's id is its
`ConnId`): `Send` a push, `Close` on a push DELETE, an expired timer or a
backend too slow, `Arm` the next timer check.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from freescore.effects import Close, ConnId, Effects
from freescore.gateway import wire
from freescore.wireformat import CloseCode

IDLE_REASON = "Idle timeout"
DURATION_REASON = "Max connection duration"
BACKLOG_REASON = "Backend too slow"

BACKLOG_MESSAGES = 256
BACKLOG_BYTES = 8 * 1024 * 1024


def new_connection_id() -> str:
    """Lowercase hyphenated UUID4: random, so ids are never reused."""
    return str(uuid.uuid4())


@dataclass
class ConnectionRecord:
    """What the push API's GET reports, plus the clocks the timers read."""

    id: str
    source_ip: str
    user_agent: str
    connected_at: float
    last_active_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.last_active_at:
            self.last_active_at = self.connected_at

    def touch(self, now: float) -> None:
        """A data message in either direction (control frames do not count)."""
        self.last_active_at = now


@dataclass(frozen=True)
class Timers:
    """Idle and maximum-duration limits in seconds; 0 disables one."""

    idle: float
    max_duration: float

    def expiry(self, record: ConnectionRecord, now: float) -> Close | None:
        """The close a due timer asks for (1001), or None."""
        if self.max_duration > 0 and now >= record.connected_at + self.max_duration:
            return Close(ConnId(record.id), CloseCode.GOING_AWAY, DURATION_REASON)
        if self.idle > 0 and now >= record.last_active_at + self.idle:
            return Close(ConnId(record.id), CloseCode.GOING_AWAY, IDLE_REASON)
        return None

    def check(self, record: ConnectionRecord, now: float) -> Effects:
        """On opening and whenever the armed check fires: close if a timer is due, else arm the next check."""
        fx = Effects()
        expired = self.expiry(record, now)
        if expired is not None:
            fx.append(expired)
            return fx
        due = self.next_check(record)
        if due is not None:
            fx.arm(record.id, max(0.0, due - now))
        return fx

    def next_check(self, record: ConnectionRecord) -> float | None:
        """The earliest time an expiry could be due; None when both timers are off."""
        due = []
        if self.max_duration > 0:
            due.append(record.connected_at + self.max_duration)
        if self.idle > 0:
            due.append(record.last_active_at + self.idle)
        return min(due) if due else None


@dataclass(frozen=True)
class Hook:
    """One message hook waiting to be sent."""

    payload: bytes
    binary: bool


@dataclass
class SharedBacklog:
    """Bytes of client messages waiting for, or in flight to, the backend, all connections together.

    Each connection's `Backlog` bounds its own; this bounds their sum (`max_backlog`, 0: no bound),
    which a hanging backend would otherwise let reach max_connections times the per-connection bound.
    """

    limit: int = 0
    total: int = 0

    def take(self, size: int) -> bool:
        """Count `size` more bytes, or answer False if they would take the total over the limit."""
        if self.limit and self.total + size > self.limit:
            return False
        self.total += size
        return True

    def give_back(self, size: int) -> None:
        self.total -= size


@dataclass
class Backlog:
    """The PUTs of one connection, sent one at a time and in order.

    Over `max_messages` queued or `max_bytes` in total, or when its message would take
    `shared` (all connections' backlogs) over its limit, `add` answers False and the
    connection is closed with 1013: the backend cannot keep up. A message counts in
    `shared` from `add` until its PUT is `done` (answered, failed or timed out).
    """

    max_messages: int = BACKLOG_MESSAGES
    max_bytes: int = BACKLOG_BYTES
    shared: SharedBacklog = field(default_factory=SharedBacklog)
    queue: deque[Hook] = field(default_factory=deque)
    queued_bytes: int = 0
    in_flight: bool = False
    in_flight_bytes: int = 0
    refused: bool = False
    """It was full once: the connection is closing 1013 and nothing more goes to the backend."""

    @classmethod
    def holding(cls, max_message: int, shared: SharedBacklog | None = None) -> Backlog:
        """A backlog with room for at least one largest message, so a message the
        settings allow is never refused as a sign of a slow backend."""
        return cls(max_bytes=max(BACKLOG_BYTES, max_message), shared=shared if shared is not None else SharedBacklog())

    def add(self, hook: Hook) -> bool:
        size = len(hook.payload)
        if len(self.queue) >= self.max_messages or self.queued_bytes + size > self.max_bytes:
            return False
        if not self.shared.take(size):
            return False
        self.queue.append(hook)
        self.queued_bytes += size
        return True

    def next(self) -> Hook | None:
        """The hook to send now, or None while one is in flight or none waits."""
        if self.in_flight or not self.queue:
            return None
        hook = self.queue.popleft()
        self.queued_bytes -= len(hook.payload)
        self.in_flight = True
        self.in_flight_bytes = len(hook.payload)
        return hook

    def done(self) -> None:
        """The PUT in flight is over, whatever its outcome: its bytes leave the shared total."""
        self.shared.give_back(self.in_flight_bytes)
        self.in_flight = False
        self.in_flight_bytes = 0

    def drained(self) -> bool:
        return not self.in_flight and not self.queue


def message_in(record: ConnectionRecord, backlog: Backlog, hook: Hook, now: float) -> Effects:
    """A client's message (also one that crossed a close freescore started: the client sent it before it
    knew): queued for its PUT; with the backlog full, the connection closes 1013 and takes no more."""
    fx = Effects()
    if backlog.refused:
        return fx
    record.touch(now)
    if not backlog.add(hook):
        backlog.refused = True
        fx.close(ConnId(record.id), CloseCode.TRY_AGAIN_LATER, BACKLOG_REASON)
    return fx


def push(record: ConnectionRecord, command: wire.PushCommand, now: float, unsent: Callable[[], int],
         max_unsent: int) -> tuple[int, bytes, Effects]:
    """A push API command for an open connection: the status and body to answer, and what the connection gets.

    A send to a client with more than `max_unsent` bytes unsent raises the 429 `PushError`.
    """
    fx = Effects()
    cid = ConnId(record.id)
    if isinstance(command, wire.PushSend):
        if unsent() > max_unsent:
            raise wire.buffer_full()
        record.touch(now)
        fx.send(cid, command)
        return 200, wire.OK_BODY, fx
    if isinstance(command, wire.PushInfo):
        return 200, wire.info_body(record.connected_at, record.last_active_at, record.source_ip,
                                   record.user_agent), fx
    fx.close(cid, CloseCode.NORMAL)
    return 204, b"", fx


def close_retry_delay(attempt: int, status: int | None, delays: tuple[float, ...]) -> float | None:
    """Seconds before DELETE attempt `attempt + 1`, or None to stop.

    `attempt` counts from 1; `status` is the HTTP status, None for a
    connection error or a timeout. Only those and 5xx are retried.
    """
    if status is not None and status < 500:
        return None
    if attempt > len(delays):
        return None
    return delays[attempt - 1]

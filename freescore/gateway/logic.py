"""The gateway's state and rules: connection records, timers, the PUT backlog.

Plain Python with time passed in, so each rule can be tested without a
network or a reactor. The adapter asks; this module decides.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field

from freescore.wireformat import CloseCode

IDLE_REASON = "Idle timeout"
DURATION_REASON = "Max connection duration"
BACKLOG_REASON = "Backend too slow"

BACKLOG_MESSAGES = 256
BACKLOG_BYTES = 8 * 1024 * 1024


def new_connection_id() -> str:
    """Lowercase hyphenated UUID4: random, so ids are never reused."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Expiry:
    code: CloseCode
    reason: str


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

    def expiry(self, record: ConnectionRecord, now: float) -> Expiry | None:
        if self.max_duration > 0 and now >= record.connected_at + self.max_duration:
            return Expiry(CloseCode.GOING_AWAY, DURATION_REASON)
        if self.idle > 0 and now >= record.last_active_at + self.idle:
            return Expiry(CloseCode.GOING_AWAY, IDLE_REASON)
        return None

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
class Backlog:
    """The PUTs of one connection, sent one at a time and in order.

    Over `max_messages` queued or `max_bytes` in total, `add` answers False
    and the connection is closed with 1013: the backend cannot keep up.
    """

    max_messages: int = BACKLOG_MESSAGES
    max_bytes: int = BACKLOG_BYTES
    queue: deque[Hook] = field(default_factory=deque)
    queued_bytes: int = 0
    in_flight: bool = False

    @classmethod
    def holding(cls, max_message: int) -> Backlog:
        """A backlog with room for at least one largest message, so a message the
        settings allow is never refused as a sign of a slow backend."""
        return cls(max_bytes=max(BACKLOG_BYTES, max_message))

    def add(self, hook: Hook) -> bool:
        if len(self.queue) >= self.max_messages or self.queued_bytes + len(hook.payload) > self.max_bytes:
            return False
        self.queue.append(hook)
        self.queued_bytes += len(hook.payload)
        return True

    def next(self) -> Hook | None:
        """The hook to send now, or None while one is in flight or none waits."""
        if self.in_flight or not self.queue:
            return None
        hook = self.queue.popleft()
        self.queued_bytes -= len(hook.payload)
        self.in_flight = True
        return hook

    def done(self) -> None:
        self.in_flight = False

    def drained(self) -> bool:
        return not self.in_flight and not self.queue


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

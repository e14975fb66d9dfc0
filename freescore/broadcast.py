"""The one broadcaster: a message framed once, each connection's frames of a batch in one write.

What was measured and is kept here (docs/architecture.md):

- a broadcast frame is built once (`server_frame`, `text_frame`, or a
  `SharedText` that frames itself on first use) and the same bytes go to
  every recipient, never `json.dumps` or framing per connection;
- `queue` collects the frames of one batch (a reactor turn, or a service's own
  group commit) per connection, and `flush` writes each connection's frames
  with one write, so a burst costs one send per connection, not one per message;
- writes go straight to the socket when nothing is waiting (the base's
  `write_now`), and frames are counted into the metrics without a lock
  (`freescore.metrics.Tally`), so a direct send needs no end-of-turn call.

A frame sent to one connection while a batch holds frames for it queues
behind them (the base's `sendData`), so order per connection is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from freescore.metrics import ServiceMetrics
from freescore.websocket import FreescoreServerProtocol

_OPEN = FreescoreServerProtocol.STATE_OPEN


def server_frame(payload: bytes, binary: bool = False) -> bytes:
    """One unmasked, unfragmented frame: what Autobahn's sendMessage builds for a server.

    Byte-identical to Autobahn's (no extension is ever negotiated: the
    factories accept none), at a fraction of its per-call checks.
    """
    n = len(payload)
    head = 0x82 if binary else 0x81
    if n < 126:
        return bytes((head, n)) + payload
    if n < 65536:
        return bytes((head, 126)) + n.to_bytes(2, "big") + payload
    return bytes((head, 127)) + n.to_bytes(8, "big") + payload


_SHORT_TEXT_HEADS = [bytes((0x81, n)) for n in range(126)]


def text_frame(text: str) -> bytes:
    payload = text.encode()  # UTF-8; without the argument, no argument parsing
    n = len(payload)
    if n < 126:  # most replies and relays: the header from a table, no second call
        return _SHORT_TEXT_HEADS[n] + payload
    return server_frame(payload)


class SharedText(str):
    """A text message many connections get, some at once and some later (an outbox).

    It is the text itself, so it can wait in a queue of strings (an Engine.IO
    session's outbox) and join a polling response; `frame()` frames it once,
    on first use, for every WebSocket it goes to.
    """

    def frame(self) -> bytes:
        frame: bytes | None = self.__dict__.get("_frame")
        if frame is None:
            frame = self._frame = text_frame(self)
        return frame


class Broadcaster:
    """Writes frames to a service's connections and counts them into its metrics.

    With `max_unsent`, a connection that still has more than that many bytes
    unsent after a write (a batch's, or a direct one) is handed to `too_slow`
    (a slow consumer).
    """

    def __init__(
        self,
        reactor: Any,
        metrics: ServiceMetrics,
        *,
        max_unsent: int = 0,
        too_slow: Callable[[FreescoreServerProtocol], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.metrics = metrics
        self.max_unsent = max_unsent
        self.too_slow = too_slow
        self._sent = metrics.messages_out
        self._queued: list[FreescoreServerProtocol] = []
        self._flush_call: Any = None

    def send(self, proto: FreescoreServerProtocol, frame: bytes) -> bool:
        """Write one frame to one connection now (behind any it has queued); False if it is not open."""
        if proto.state != _OPEN:
            return False
        batch = proto._batch
        if batch is not None:
            batch.append(frame)
        elif not proto.write_now(frame):
            self._check(proto, len(frame))
        self._sent.pending += 1  # Tally.inc without the call: this runs for every reply
        return True

    def broadcast(self, recipients: Iterable[FreescoreServerProtocol], frame: bytes) -> int:
        """Write the same frame to every open recipient now; the number it went to."""
        return self._to_each(recipients, frame, False)

    def queue(self, recipients: Iterable[FreescoreServerProtocol], frame: bytes) -> int:
        """Add the frame to every open recipient's batch; `flush` (or the end of the turn) writes it."""
        return self._to_each(recipients, frame, True)

    def _to_each(self, recipients: Iterable[FreescoreServerProtocol], frame: bytes, batch_it: bool) -> int:
        sent = 0
        queued = self._queued
        size = len(frame)
        for proto in recipients:
            if proto.state != _OPEN:
                continue
            sent += 1
            batch = proto._batch
            if batch is not None:  # behind what this batch holds for it already
                batch.append(frame)
                continue
            if batch_it:
                proto._batch = [frame]
                queued.append(proto)
                continue
            # `write_now`'s send straight to the kernel, in the loop: a call less per recipient
            conn = proto._tcp
            if conn is not None and not proto.send_queue and conn.connected and not conn.disconnecting \
                    and not conn._tempDataLen and len(conn.dataBuffer) == conn.offset:
                try:
                    done = conn.socket.send(frame)
                except OSError:  # EAGAIN, or an error Twisted reports on its next write
                    done = 0
                if done == size:
                    continue
                proto.transport.write(frame[done:] if done else frame)
            elif proto.write_now(frame):
                continue
            self._check(proto, size)
        if sent:
            self.metrics.messages_out.inc(sent)
        if queued and self._flush_call is None:
            self._flush_call = self.reactor.callLater(0, self.flush)
        return sent

    def flush(self) -> None:
        """Write every queued batch, one write per connection, and count what went out."""
        call, self._flush_call = self._flush_call, None
        if call is not None and call.active():
            call.cancel()
        queued, self._queued = self._queued, []
        for proto in queued:
            batch, proto._batch = proto._batch, None
            if not batch:
                continue
            data = batch[0] if len(batch) == 1 else b"".join(batch)
            if not proto.write_now(data):
                self._check(proto, len(data))

    def _check(self, proto: FreescoreServerProtocol, size: int) -> None:
        """`size` bytes of a write stayed buffered: over `max_unsent`, the connection is a slow consumer.

        A running count, not a walk of the transports per buffered write: `_unsent_bound` is what
        was unsent when last measured plus every write of the broadcaster's left buffered since, so
        the transports are measured only once it passes the limit (and at a connection's first
        buffered write), and it restarts from that figure. What others write in between (replies,
        held back by the base's read back-pressure) shows at the next measurement.
        """
        limit = self.max_unsent
        if not limit:
            return
        bound = proto._unsent_bound + size
        if bound <= limit:
            proto._unsent_bound = bound
            return
        if proto.state != _OPEN:
            return
        unsent = proto._unsent_bound = proto.unsent_bytes()
        if unsent > limit:
            assert self.too_slow is not None
            self.too_slow(proto)

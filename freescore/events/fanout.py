"""One prepared frame, many recipients: the cost of a broadcast is one write per socket."""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp

from freescore.websocket import FreescoreServerFactory


def _write_now(transport: Any, data: bytes) -> None:
    """Send at once when nothing is queued on a plain TCP transport, else queue as usual.

    Twisted's `write` always defers to the next reactor turn and costs two
    epoll registrations per socket; with hundreds of recipients per message,
    sending straight away is what keeps a broadcast near one syscall per
    recipient. Anything unusual (TLS, queued data, errors) takes the normal path.
    """
    if (type(transport) is tcp.Server and transport.connected and not transport.disconnecting
            and not getattr(transport, "TLS", True) and not getattr(transport, "_writeDisconnected", True)
            and not getattr(transport, "dataBuffer", True) and not getattr(transport, "_tempDataBuffer", True)):
        try:
            sent = transport.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            transport.write(data)  # let Twisted notice the broken connection its own way
            return
        if sent < len(data):
            transport.write(data[sent:])
        return
    transport.write(data)


class BroadcastFrame(str):
    """A text packet shared by many sessions' outboxes: framed once, on its first WebSocket send.

    Recipients that cannot take a broadcast straight away (an Engine.IO session
    with packets still queued, or mid-upgrade) get this same object queued, so
    their later flush reuses the one prepared frame instead of re-encoding and
    re-framing the message per connection.
    """

    def prepared(self, factory: FreescoreServerFactory) -> Any:
        prep = self.__dict__.get("_prepared")
        if prep is None:
            prep = self._prepared = factory.prepareMessage(self.encode("utf-8"), isBinary=False)
        return prep


def fan_out(factory: FreescoreServerFactory, protos: list[Any], payload: bytes | None, metrics: Any,
            prepared: Any = None) -> int:
    """Frame once, then one write of the same bytes per open recipient.

    Same result as `factory.broadcast`, minus Autobahn's per-send debug-log
    formatting (`sendData` builds its log arguments even when debug is off)
    and Twisted's deferred write, which together were most of the
    per-recipient time under load. Pass `prepared` (and payload None) when
    the frame was already prepared for this broadcast.
    """
    if prepared is None:
        assert payload is not None
        prepared = factory.prepareMessage(payload, isBinary=False)
    data = prepared.payloadHybi
    fast = 0
    for proto in protos:
        if proto.state != proto.STATE_OPEN:
            continue
        if proto.send_queue or proto._perMessageCompress is not None:
            proto.sendPreparedMessage(prepared)
        else:
            _write_now(proto.transport, data)
            fast += 1
    if fast:
        metrics.messages_out.inc(fast)
    return fast

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


def fan_out(factory: FreescoreServerFactory, protos: list[Any], payload: bytes, metrics: Any) -> int:
    """Frame once, then one write of the same bytes per open recipient.

    Same result as `factory.broadcast`, minus Autobahn's per-send debug-log
    formatting (`sendData` builds its log arguments even when debug is off)
    and Twisted's deferred write, which together were most of the
    per-recipient time under load.
    """
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

"""One prepared frame, many recipients: the cost of a broadcast is one write per socket."""

from __future__ import annotations

from typing import Any

from freescore.websocket import FreescoreServerFactory


def fan_out(factory: FreescoreServerFactory, protos: list[Any], payload: bytes, metrics: Any) -> int:
    """Frame once, then one transport write of the same bytes per open recipient.

    Same result as `factory.broadcast`, minus Autobahn's per-send debug-log
    formatting (`sendData` builds its log arguments even when debug is off),
    which cost about half of the per-recipient time under load.
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
            proto.transport.write(data)
            fast += 1
    if fast:
        metrics.messages_out.inc(fast)
    return fast

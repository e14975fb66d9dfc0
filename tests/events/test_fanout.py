"""A broadcast frame is encoded and framed once, whatever path each recipient takes."""

from autobahn.twisted.websocket import WebSocketServerFactory

from freescore.events import engineio as eio
from freescore.events.fanout import BroadcastFrame


def test_broadcast_frame_is_a_str_and_prepared_once():
    frame = BroadcastFrame('42["message",{"id":1,"channel":"é","message":"x"}]')
    assert frame == '42["message",{"id":1,"channel":"é","message":"x"}]'
    assert eio.encode_payload(["3", frame]) == "3\x1e" + str(frame)
    factory = WebSocketServerFactory()
    first = frame.prepared(factory)
    assert frame.prepared(factory) is first
    data = frame.encode("utf-8")
    # An unmasked, unfragmented text frame of exactly these bytes.
    assert first.payloadHybi == bytes([0x81, len(data)]) + data
    assert first.payload == data and first.binary is False

"""The broadcaster: frames built once, byte-identical to Autobahn's, one write per connection per batch, order kept."""

from __future__ import annotations

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory
from memnode import close_frame, split_frames

from freescore.broadcast import SharedText, server_frame, text_frame


@pytest.mark.parametrize("n,header", [(0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"),
                                      (65535, b"\x81\x7e\xff\xff"), (65536, b"\x81\x7f" + (65536).to_bytes(8, "big"))])
def test_text_frame_lengths(n, header):
    assert text_frame("x" * n) == header + b"x" * n


def test_text_frame_is_utf8():
    assert text_frame("é") == b"\x81\x02\xc3\xa9"


@pytest.mark.parametrize("n", [0, 125, 126, 65535, 65536])
@pytest.mark.parametrize("binary", [False, True])
def test_frames_are_what_autobahn_prepares(n, binary):
    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    prepared = WebSocketServerFactory().prepareMessage(payload, isBinary=binary)
    assert server_frame(payload, binary) == prepared.payloadHybi


def test_shared_text_is_the_text_and_frames_itself_once():
    text = SharedText('42["message",{"id":1,"channel":"é"}]')
    assert text == '42["message",{"id":1,"channel":"é"}]' and "\x1e".join(["3", text]).endswith(text)
    first = text.frame()
    assert text.frame() is first and first == text_frame(str(text))


@pytest.fixture
def node(node_of):
    return node_of('[fedmsg]\nmax_outbound_buffer = 1000\n[clicker]\nstate = "c"\n', "fedmsg", "clicker")


def test_a_batch_reaches_each_connection_in_one_write_and_a_reply_queues_behind_it(node):
    svc = node.service("clicker")
    a, b = node.websocket("/ws"), node.websocket("/ws")
    writes = []
    a.transport.write = lambda data: writes.append(bytes(data))  # type: ignore[method-assign]
    svc.broadcaster.queue([a.proto, b.proto], text_frame("one"))
    svc.broadcaster.queue([a.proto], text_frame("two"))
    a.proto.sendMessage(b"reply")  # a direct send waits behind the batch
    assert writes == [] and b.written() == b""
    svc.broadcaster.flush()
    assert writes == [text_frame("one") + text_frame("two") + text_frame("reply")]
    assert b.frames() == [(1, b"one")]


def test_the_batch_is_written_at_the_end_of_the_turn_and_counted_once(node):
    svc = node.service("clicker")
    a = node.websocket("/ws")
    def sent():
        return svc.ctx.metrics.registry.get_sample_value("freescore_messages_out_total", {"service": "clicker"})

    before = sent()
    assert svc.broadcaster.queue([a.proto], text_frame("x")) == 1
    assert svc.broadcaster.broadcast([a.proto], text_frame("y")) == 1
    assert a.written() == b""
    node.clock.advance(0)
    assert a.texts() == ["x", "y"]
    assert sent() == before + 2


def test_closed_connections_get_nothing(node):
    svc = node.service("clicker")
    a = node.websocket("/ws")
    a.proto.close_with(1000)
    a.written()
    assert svc.broadcaster.broadcast([a.proto], text_frame("late")) == 0
    assert svc.broadcaster.queue([a.proto], text_frame("late")) == 0
    svc.broadcaster.flush()
    assert a.written() == b""


def test_a_slow_consumer_is_closed_1013_after_its_batch(node):
    svc = node.service("fedmsg")
    slow = node.websocket("/fedmsg")
    # What Twisted's TCP transport holds when the kernel took no more: 5000 bytes unsent.
    slow.transport.dataBuffer, slow.transport.offset, slow.transport._tempDataLen = b"\0" * 5000, 0, 0
    fast = node.websocket("/fedmsg")
    svc.broadcaster.queue([fast.proto], text_frame("a" * 10))
    svc.broadcaster.queue([slow.proto], text_frame("a" * 10))
    svc.broadcaster.flush()
    assert split_frames(slow.written()) == [(1, b"a" * 10), *split_frames(close_frame(1013, "slow consumer"))]
    assert fast.frames() == [(1, b"a" * 10)]

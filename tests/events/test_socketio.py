"""Socket.IO v5 packet encoding and parsing."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.events import socketio as sio


def test_encode_forms():
    assert sio.encode(sio.CONNECT, {"sid": "x"}) == '0{"sid":"x"}'
    assert sio.encode(sio.CONNECT_ERROR, {"message": "Invalid namespace"}, namespace="/admin") == (
        '4/admin,{"message":"Invalid namespace"}'
    )
    assert sio.encode(sio.DISCONNECT) == "1"
    assert sio.event("message", {"id": 1}) == '2["message",{"id":1}]'
    assert sio.ack(0, {"status": "success"}) == '30[{"status":"success"}]'
    assert sio.ack(12, None) == "312[null]"
    assert sio.event("x", "é") == '2["x","é"]'


@pytest.mark.parametrize(
    "text,kind,ns,ack,data",
    [
        ("0", 0, "/", None, None),
        ('0{"role":"sender","token":"t"}', 0, "/", None, {"role": "sender", "token": "t"}),
        ("0/admin,", 0, "/admin", None, None),
        ("0/admin", 0, "/admin", None, None),
        ('21["post",{"channel":"a"}]', 2, "/", 1, ["post", {"channel": "a"}]),
        ('20["last-msg"]', 2, "/", 0, ["last-msg"]),
        ('2/x,5["e"]', 2, "/x", 5, ["e"]),
        ("30[1]", 3, "/", 0, [1]),
        ("1", 1, "/", None, None),
    ],
)
def test_decode(text, kind, ns, ack, data):
    p = sio.decode(text)
    assert (p.type, p.namespace, p.ack_id, p.data) == (kind, ns, ack, data)


@pytest.mark.parametrize(
    "bad",
    [
        "", "x", "7", "9[]", '51-["a",{"_placeholder":true,"num":0}]', "6", "0[1]", '0"s"', "1{}",
        "2", "2{}", "2[]", "2[1]", "2[\"a\"", "3{}", "31{}", '4{"message":"x"}', "2[NaN]", '2["a",1e999]',
        "2" + "9" * 20 + '["a"]', '2["a",' + "[" * 100 + "]" * 100 + "]", '2["a",' + '{"k":' * 100 + "1" + "}" * 101,
    ],
)
def test_decode_refuses(bad):
    with pytest.raises(sio.SocketIOError):
        sio.decode(bad)


def test_nesting_up_to_max_depth_is_taken():
    """Deeper JSON is refused at the door: encoded again deeper in the stack, it would hit the recursion limit."""
    assert sio.decode('2["a",' + "[" * 99 + "]" * 99 + "]").data[1] == json.loads("[" * 99 + "]" * 99)


def test_lone_surrogates_go_out_escaped_as_json_stringify_writes_them():
    packet = sio.event("message", {"message": sio.decode('2["x","lone \\ud800 \u00e9"]').data[1]})
    assert packet == '2["message",{"message":"lone \\ud800 \u00e9"}]'
    packet.encode("utf-8")


@given(st.text())
def test_decode_only_raises_socketio_error(text):
    try:
        sio.decode(text)
    except sio.SocketIOError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(st.text(min_size=1), st.lists(json_values, max_size=3), st.none() | st.integers(0, 10**12))
def test_event_roundtrip(name, args, ack_id):
    p = sio.decode(sio.event(name, *args, ack_id=ack_id))
    assert p.type == sio.EVENT and p.ack_id == ack_id and p.data == [name, *args]

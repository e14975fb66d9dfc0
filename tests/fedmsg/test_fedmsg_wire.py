"""fedmsg wire layer: browser frames, ZeroMQ frames, HTTP publish bodies, envelopes."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.fedmsg import wire
from freescore.fedmsg.wire import BadMessage, Publish, Subscribe, Unsubscribe

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def test_subscribe_and_unsubscribe():
    assert wire.parse_client_frame(b'{"topic":"__topic_subscribe__","body":"org.*"}') == Subscribe("org.*")
    assert wire.parse_client_frame('{"topic":"__topic_unsubscribe__","body":""}') == Unsubscribe("")


def test_other_topic_is_a_publish_with_compact_body():
    frame = wire.parse_client_frame(b'{"topic": "org.x", "body": {"a": [1, 2]}}')
    assert frame == Publish("org.x", '{"a":[1,2]}')
    assert wire.parse_client_frame(b'{"topic": "org.x"}') == Publish("org.x", "null")


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b"[1,2]",
        b'"x"',
        b"{}",
        b'{"topic":5}',
        b'{"topic":null,"body":"x"}',
        b'{"topic":"__topic_subscribe__","body":["a"]}',
        b'{"topic":"__topic_subscribe__"}',
        b'{"topic":"__topic_unsubscribe__","body":7}',
        b'{"topic":"","body":1}',
        b'{"topic":"x","body":NaN}',
        b"[" * 100000,
    ],
)
def test_bad_frames_raise_bad_message(payload):
    with pytest.raises(BadMessage):
        wire.parse_client_frame(payload)


def test_pattern_length_limit():
    wire.parse_client_frame(json.dumps({"topic": "__topic_subscribe__", "body": "a" * 10}), max_pattern_length=10)
    with pytest.raises(BadMessage, match="longer"):
        wire.parse_client_frame(json.dumps({"topic": "__topic_subscribe__", "body": "a" * 11}), max_pattern_length=10)


def test_zmq_frames():
    body = b'{"topic":"org.x","msg":{"a":1},"signature":"AB\\nCD"}'
    assert wire.parse_zmq_frames([b"org.x", body]) == ("org.x", body.decode())
    for parts in ([b"org.x"], [b"org.x", b"{}", b"{}"], [b"org.x", b"{nope"], [b"\xff", b"{}"], [b"x", b"\xff"]):
        with pytest.raises(BadMessage):
            wire.parse_zmq_frames(parts)


def test_publish_request():
    assert wire.parse_publish_request(b'{"topic":"org.x","body":{"a":1}}') == ("org.x", '{"a":1}')
    bad = (b"", b"nope", b"[]", b'{"body":1}', b'{"topic":"","body":1}', b'{"topic":"x"}', b'{"topic":1,"body":1}')
    for data in bad:
        with pytest.raises(BadMessage):
            wire.parse_publish_request(data)


def test_envelope_keeps_body_text_verbatim():
    body = '{ "b" : 1,\n "signature": "QUJD\\nREVG" }'
    frame = wire.format_envelope("org.x", body)
    assert frame == b'{"topic":"org.x","body":' + body.encode() + b"}"
    assert json.loads(frame) == {"topic": "org.x", "body": {"b": 1, "signature": "QUJD\nREVG"}}


def test_lone_surrogates_stay_valid_utf8():
    topic, body = wire.parse_publish_request(b'{"topic":"a","body":"\\udfff"}')
    frame = wire.format_envelope(topic, body)
    assert json.loads(frame.decode("utf-8")) == {"topic": "a", "body": "\udfff"}


@pytest.mark.parametrize("publish", [
    lambda: wire.parse_publish_request(b'{"topic":"a\\ud800","body":1}'),
    lambda: wire.parse_client_frame(b'{"topic":"a\\udfff","body":1}'),
])
def test_a_topic_zeromq_cannot_carry_is_refused(publish):
    with pytest.raises(wire.BadMessage, match="lone surrogate"):
        publish()


@given(st.text(), json_values)
def test_envelope_roundtrip(topic, value):
    body_text = wire.encode_json_text(value)
    frame = wire.format_envelope(topic, wire.check_body_text(body_text))
    assert json.loads(frame.decode("utf-8")) == {"topic": topic, "body": value}


@given(st.binary(max_size=200))
def test_parse_client_frame_never_raises_other_errors(data):
    try:
        frame = wire.parse_client_frame(data)
    except BadMessage:
        return
    assert isinstance(frame, (Subscribe, Unsubscribe, Publish))


@given(st.dictionaries(st.sampled_from(["topic", "body", "x"]), json_values | st.sampled_from(
    ["__topic_subscribe__", "__topic_unsubscribe__"]), max_size=3))
def test_parse_client_frame_on_json_objects(obj):
    try:
        frame = wire.parse_client_frame(json.dumps(obj))
    except BadMessage:
        assert not isinstance(obj.get("topic"), str) or obj["topic"] == "" or not isinstance(obj.get("body"), str)
        return
    if isinstance(frame, Publish):
        assert frame.topic == obj["topic"]
        assert json.loads(frame.body_text) == obj.get("body")
    else:
        assert frame.pattern == obj["body"]

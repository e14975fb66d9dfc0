"""Engine.IO v4 sans-I/O core: packets, payloads, request checks, heartbeat and upgrade."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.events import engineio as eio

TIMING = eio.Timing(ping_interval=25.0, ping_timeout=20.0, join_timeout=45.0)


def session(transport="polling", now=0.0):
    return eio.Session("s" * 20, transport, now, TIMING)


class Sessions(dict):
    pass


def test_handshake_packet_matches_node():
    text = eio.handshake_packet("abc", ["websocket"], 25000, 300000, 10000)
    assert text == (
        '0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":300000,"maxPayload":10000}'
    )


def test_sid_is_20_url_safe_chars():
    sid = eio.new_sid()
    assert len(sid) == 20
    assert all(c.isalnum() or c in "-_" for c in sid)


def test_packets_roundtrip_and_payload_separator():
    assert eio.decode_packet("4hello") == ("4", "hello")
    assert eio.encode_payload(["2", '40{"sid":"x"}']) == '2\x1e40{"sid":"x"}'
    assert eio.decode_payload("3\x1e42[\"a\"]") == [("3", ""), ("4", '2["a"]')]


@pytest.mark.parametrize("bad", ["", "7", "x", "bAAAA", "\x1e"])
def test_bad_packets_raise_packet_error(bad):
    with pytest.raises(eio.PacketError):
        eio.decode_payload(bad)


@given(st.lists(st.tuples(st.sampled_from(sorted(eio.PACKET_TYPES)), st.text().filter(lambda t: "\x1e" not in t))))
def test_payload_roundtrip(packets):
    if not packets:
        return
    encoded = eio.encode_payload([eio.encode_packet(k, d) for k, d in packets])
    assert eio.decode_payload(encoded) == packets


@given(st.text())
def test_decode_payload_only_raises_packet_error(body):
    try:
        eio.decode_payload(body)
    except eio.PacketError:
        pass


@pytest.mark.parametrize(
    "method,query,code",
    [
        ("GET", {"EIO": "4", "transport": "foo"}, 0),
        ("GET", {"EIO": "4"}, 0),
        ("GET", {"EIO": "3", "transport": "polling"}, 5),
        ("GET", {"transport": "polling"}, 5),
        ("GET", {"EIO": "4", "transport": "polling", "sid": "nope"}, 1),
        ("POST", {"EIO": "4", "transport": "polling"}, 2),
    ],
)
def test_request_errors(method, query, code):
    with pytest.raises(eio.EngineIOError) as e:
        eio.check_request(method, query, Sessions())
    assert e.value.code == code
    body = json.loads(e.value.body())
    assert body["code"] == code and isinstance(body["message"], str)


def test_request_messages_are_nodes():
    assert eio.unknown_sid().body() == b'{"code":1,"message":"Session ID unknown"}'
    assert eio.bad_request().message == "Bad request"
    assert eio.transport_unknown().message == "Transport unknown"
    assert eio.bad_handshake_method().message == "Bad handshake method"
    assert eio.unsupported_protocol().message == "Unsupported protocol version"


def test_upgraded_session_refuses_polling():
    s = session()
    sessions = Sessions({s.sid: s})
    assert eio.check_request("GET", {"EIO": "4", "transport": "polling", "sid": s.sid}, sessions).sid == s.sid
    ws = eio.check_request("GET", {"EIO": "4", "transport": "websocket", "sid": s.sid}, sessions)
    assert ws.transport == "websocket"
    s.begin_upgrade(0.0)
    with pytest.raises(eio.EngineIOError) as second:  # one probing WebSocket at a time, as Node
        eio.check_request("GET", {"EIO": "4", "transport": "websocket", "sid": s.sid}, sessions)
    assert second.value.code == 3
    with pytest.raises(eio.EngineIOError):
        s.begin_upgrade(0.0)
    s.probe()
    s.upgrade()
    with pytest.raises(eio.EngineIOError) as e:
        eio.check_request("GET", {"EIO": "4", "transport": "polling", "sid": s.sid}, sessions)
    assert e.value.code == 3


def test_one_get_and_one_post_at_a_time():
    s = session()
    s.begin_get()
    with pytest.raises(eio.EngineIOError):
        s.begin_get()
    s.begin_post()
    with pytest.raises(eio.EngineIOError):
        s.begin_post()
    s.end_get()
    s.end_post()
    s.begin_get()


def test_outbox_waits_for_a_get():
    s = session()
    s.send("4a")
    s.send("4b")
    assert s.take() == []
    s.begin_get()
    assert s.take() == ["4a", "4b"]
    assert s.take() == []


def test_heartbeat_ping_then_timeout():
    s = session()
    s.joined()
    assert s.next_deadline() == 25.0
    s.tick(24.9)
    assert s.outbox == []
    s.tick(25.0)
    assert s.outbox == ["2"] and s.awaiting_pong
    assert s.next_deadline() == 45.0
    s.tick(44.0)
    assert not s.closed
    s.tick(45.0)
    assert s.closed and s.close_reason == "ping timeout"


def test_pong_reschedules_ping():
    s = session()
    s.joined()
    s.tick(25.0)
    s.outbox.clear()
    s.receive("3", "", 30.0)
    assert not s.awaiting_pong
    assert s.next_deadline() == 55.0
    s.tick(45.0)
    assert not s.closed


def test_no_namespace_join_closes():
    s = session()
    s.receive("3", "", 1.0)
    s.tick(45.0)
    assert s.closed and s.close_reason == "no namespace joined"


def test_probe_sends_noop_to_held_get_and_upgrade_switches():
    s = session()
    s.begin_get()
    s.begin_upgrade(0.0)
    assert s.probe() == "3probe"
    assert s.take() == ["6"]
    s.end_get()
    s.send("4x")
    assert s.take() == []  # not yet: the switch is in progress
    s.upgrade()
    assert s.transport == "websocket" and s.upgraded
    assert s.take() == ["4x"]


def test_upgrade_without_probe_is_an_error():
    s = session()
    with pytest.raises(eio.PacketError):
        s.probe()  # no WebSocket opened to probe
    with pytest.raises(eio.PacketError):
        s.upgrade()
    with pytest.raises(eio.PacketError):
        s.receive("5", "", 0.0)


def test_client_close_and_server_close():
    s = session()
    s.receive("1", "", 0.0)
    assert s.closed and s.outbox == []
    t = session()
    t.close("bye")
    assert t.outbox == ["1"]
    t.send("4late")
    assert t.outbox == ["1"]


def test_message_data_is_returned():
    s = session()
    assert s.receive("4", '0{"a":1}', 0.0) == '0{"a":1}'
    assert s.receive("6", "", 0.0) is None


def test_an_outbox_over_max_unsent_is_dropped_and_the_session_closed_unknown():
    s = eio.Session("s" * 20, "polling", 0.0, TIMING, max_unsent=20)
    s.send("4" + "x" * 8)  # 9 characters and a separator: 10
    s.send("4" + "y" * 8)  # 20: at the limit, kept
    assert len(s.outbox) == 2 and not s.closed and s.take_dropped() == 0
    s.send("4z")  # 23: over it
    assert s.closed and s.close_reason == eio.OUTBOX_FULL and s.outbox == []
    assert s.take_dropped() == 23 and s.take_dropped() == 0  # reported once
    with pytest.raises(eio.EngineIOError) as e:  # no close packet: the next GET's sid is unknown
        eio.check_request("GET", {"EIO": "4", "transport": "polling", "sid": s.sid}, Sessions({s.sid: s}))
    assert e.value.code == 1


def test_what_a_get_takes_no_longer_counts_and_zero_is_off():
    s = eio.Session("s" * 20, "polling", 0.0, TIMING, max_unsent=20)
    for _ in range(10):
        s.send("4" + "x" * 8)
        s.begin_get()
        assert s.take() == ["4" + "x" * 8]
        s.end_get()
    assert not s.closed
    off = session()
    for _ in range(100):
        off.send("4" + "x" * 100)
    assert not off.closed and len(off.outbox) == 100


@given(st.lists(st.text(min_size=1, max_size=30), max_size=40), st.integers(min_value=1, max_value=300))
def test_the_outbox_never_holds_more_than_max_unsent(packets, limit):
    s = eio.Session("s" * 20, "polling", 0.0, TIMING, max_unsent=limit)
    for p in packets:
        s.send(p)
        assert sum(len(q) + 1 for q in s.outbox) <= limit
    assert s.closed == (sum(len(p) + 1 for p in packets) > limit)


def test_a_probe_without_5_expires_at_the_upgrade_timeout_once_and_an_upgrade_or_a_cancel_ends_the_deadline():
    s = session()
    s.begin_upgrade(1.0)
    assert s.next_deadline() == 11.0  # before the first ping (25 s) and the join deadline (45 s)
    assert not s.upgrade_expired(10.9)
    assert s.upgrade_expired(11.0)
    assert not s.upgrade_expired(12.0)  # once: the WebSocket's going away ends the upgrade
    s.cancel_upgrade()
    s.begin_upgrade(20.0)
    s.probe()
    s.upgrade()
    assert not s.upgrade_expired(100.0)

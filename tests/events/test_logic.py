"""The daemon's rules without a network: roles, validation order, catch-up, limits, legacy."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.events import socketio as sio
from freescore.events.logic import (
    Daemon,
    LegacyReceiver,
    LegacySender,
    Limits,
    RateLimiter,
    WaitersFull,
    coerce_start,
    parse_int,
)

START = 1_750_000_000_000


def daemon(**kw):
    kw.setdefault("sender_token", "lqdoj")
    return Daemon(Limits(**kw), START)


def connect(d, auth=None, sid="s1", ns="/"):
    data = auth if auth is not None else None
    packet = sio.Packet(sio.CONNECT, ns, None, data, data is not None)
    return d.connect(packet, sid, object(), 0.0)


def emit(d, sock, name, *args, ack_id=None, now=0.0):
    return d.handle(sock, sio.decode(sio.event(name, *args, ack_id=ack_id)), now)


def events(reply):
    out = []
    for p in reply.packets:
        packet = sio.decode(p) if not p.startswith("3") else sio.decode(p)
        out.append((packet.type, packet.ack_id, packet.data))
    return out


def post(d, channel, message, msg_id):
    return d.deliver(msg_id, channel, message)


def test_sender_auth_and_failures():
    d = daemon()
    sock, reply = connect(d, {"role": "sender", "token": "lqdoj"})
    assert sock.role == "sender" and reply.packets == ['0{"sid":"s1"}']
    for auth in ({"role": "sender", "token": "nope"}, {"role": "sender"}, {"role": "sender", "token": 5}):
        sock, reply = connect(d, auth, sid="s2")
        assert sock is None and reply.packets == ['4{"message":"Authentication failed"}']
    assert d.clients == 0


def test_no_token_configured_refuses_senders():
    d = daemon(sender_token=None)
    sock, reply = connect(d, {"role": "sender", "token": "lqdoj"})
    assert sock is None


def test_clients_and_bad_namespace():
    d = daemon()
    sock, reply = connect(d)
    assert sock.role == "client" and d.clients == 1
    sock, reply = connect(d, {"role": "client"}, sid="s2")
    assert sock.role == "client"
    sock, reply = connect(d, ns="/admin", sid="s3")
    assert sock is None and reply.packets == ['4/admin,{"message":"Invalid namespace"}']


def test_capacity_accepts_then_errors_and_disconnects_senders_exempt():
    d = daemon(max_clients=1)
    connect(d, sid="a")
    sock, reply = connect(d, sid="b")
    assert sock is None and reply.close
    assert reply.packets == [
        '0{"sid":"b"}',
        '2["error",{"status":"error","code":"server-capacity","message":"Server at capacity"}]',
        "1",
    ]
    sender, _ = connect(d, {"role": "sender", "token": "lqdoj"}, sid="c")
    assert sender is not None


def test_post_with_ack_and_without():
    d = daemon()
    s, _ = connect(d, {"role": "sender", "token": "lqdoj"})
    reply = emit(d, s, "post", {"channel": "sub", "message": {"x": 1}}, ack_id=1)
    assert reply.post.channel == "sub" and reply.post.message == {"x": 1}
    post(d, "sub", {"x": 1}, START + 1)
    assert d.posted(reply.post, START + 1) == f'31[{{"status":"success","id":{START + 1}}}]'
    reply = emit(d, s, "post", {"channel": "sub", "message": 2})
    assert d.posted(reply.post, START + 2) == f'2["post-response",{{"status":"success","id":{START + 2}}}]'
    assert emit(d, s, "last-msg", ack_id=7).packets == [f'37[{{"status":"success","id":{START + 2}}}]']
    assert emit(d, s, "last-msg").packets == [f'2["last-response",{{"status":"success","id":{START + 2}}}]']


@pytest.mark.parametrize("payload", [None, 5, "x", [], {"channel": None}, {"channel": ""}, {"channel": "x" * 101},
                                     {"message": 1}, {"channel": 3}])
def test_bad_post_is_invalid_channel(payload):
    d = daemon()
    s, _ = connect(d, {"role": "sender", "token": "lqdoj"})
    args = () if payload is None else (payload,)
    reply = emit(d, s, "post", *args, ack_id=3)
    assert reply.post is None
    assert reply.packets == ['33[{"status":"error","code":"invalid-channel","message":"Invalid channel"}]']
    reply = emit(d, s, "post", *args)
    assert json.loads(reply.packets[0][1:])[0] == "error"


def test_last_msg_before_any_post_is_the_counter():
    d = daemon()
    c, _ = connect(d)
    assert emit(d, c, "last-msg", ack_id=0).packets == [f'2["last-response",{{"status":"success","id":{START}}}]']


def test_client_post_is_unauthorized():
    d = daemon()
    c, _ = connect(d)
    assert emit(d, c, "post", {"channel": "a", "message": 1}).packets == [
        '2["error",{"status":"error","code":"unauthorized","message":"Unauthorized operation"}]'
    ]


@pytest.mark.parametrize(
    "payload,code",
    [
        (None, "invalid-filter"), (5, "invalid-filter"), ({}, "invalid-filter"), ({"filter": []}, "invalid-filter"),
        ({"filter": "a"}, "invalid-filter"), ({"filter": [str(i) for i in range(11)]}, "too-many-subscriptions"),
        ({"filter": [""] * 11}, "too-many-subscriptions"), ({"filter": [""]}, "invalid-channel"),
        ({"filter": ["a", 1]}, "invalid-channel"), ({"filter": ["x" * 101]}, "invalid-channel"),
    ],
)
def test_set_filter_validation_order_keeps_old_filter(payload, code):
    d = daemon()
    c, _ = connect(d)
    emit(d, c, "set-filter", {"filter": ["old"]})
    args = () if payload is None else (payload,)
    reply = emit(d, c, "set-filter", *args)
    name, body = json.loads(reply.packets[0][1:])
    assert name == "error" and body["code"] == code and body["status"] == "error"
    assert c.channels == {"old"} and c in d.index["old"]


def test_too_many_message_text():
    d = daemon()
    c, _ = connect(d)
    reply = emit(d, c, "set-filter", {"filter": [str(i) for i in range(11)]})
    assert json.loads(reply.packets[0][1:])[1]["message"] == "Maximum 10 subscriptions per connection"


@pytest.mark.parametrize("start,expected", [(5, 5), (-1, 0), ("7", 0), (None, 0), (True, 0), (3.0, 3), (2.5, 0)])
def test_start_coercion(start, expected):
    assert coerce_start(start) == expected


def test_catch_up_after_start_then_live_once():
    d = daemon()
    a, b, c = START + 1, START + 2, START + 3
    post(d, "X", "a", a)
    post(d, "Y", "y", START + 2)
    post(d, "X", "c", c)
    s, _ = connect(d)
    assert emit(d, s, "start-msg", {"start": a}).packets == ['2["status",{"status":"success"}]']
    reply = emit(d, s, "set-filter", {"filter": ["X", "X"]})
    assert [json.loads(p[1:]) for p in reply.packets] == [
        ["status", {"status": "success"}],
        ["message", {"id": c, "channel": "X", "message": "c"}],
    ]
    assert s.last_msg == c
    live = post(d, "X", "d", START + 4)
    assert live.sockets == [s] and live.sio_packet == f'2["message",{{"id":{START + 4},"channel":"X","message":"d"}}]'
    # A repeated set-filter re-delivers nothing; a new filter stops X.
    assert len(emit(d, s, "set-filter", {"filter": ["X"]}).packets) == 1
    assert b > a
    emit(d, s, "set-filter", {"filter": ["Y"]})
    assert post(d, "X", "e", START + 5).sockets == []


def test_queue_is_bounded():
    d = daemon(max_queue=3)
    for i in range(1, 6):
        post(d, "X", i, START + i)
    s, _ = connect(d)
    reply = emit(d, s, "set-filter", {"filter": ["X"]})
    assert [json.loads(p[1:])[1]["message"] for p in reply.packets[1:]] == [3, 4, 5]


def test_disconnect_cleans_index_and_count():
    d = daemon()
    s, _ = connect(d)
    emit(d, s, "set-filter", {"filter": ["X"]})
    d.disconnect(s)
    d.disconnect(s)
    assert d.index == {} and d.clients == 0


def test_rate_limiter_limits_then_closes():
    r = RateLimiter(2.0, 0.0)
    verdicts = [r.check(0.0) for _ in range(20)]
    assert verdicts[:5] == ["allow"] * 5
    assert verdicts[5] == "limit"
    assert "close" in verdicts
    r2 = RateLimiter(2.0, 0.0)
    assert all(r2.check(t * 0.5) == "allow" for t in range(100))
    assert RateLimiter(0, 0.0).check(0.0) == "allow"


def test_rate_limited_event_then_close():
    d = daemon(rate_limit=1.0)
    s, _ = connect(d)
    replies = [emit(d, s, "last-msg") for _ in range(30)]
    codes = [json.loads(r.packets[0][1:])[1].get("code") for r in replies if r.packets]
    assert "rate-limited" in codes
    assert replies[-1].close


@given(st.lists(st.tuples(st.sampled_from(["start-msg", "set-filter", "last-msg", "post", "x"]),
                          st.none() | st.integers() | st.text() | st.dictionaries(
                              st.sampled_from(["start", "filter", "channel", "message"]),
                              st.none() | st.integers() | st.text(max_size=3) | st.lists(st.text(max_size=3)))),
                max_size=20))
def test_any_client_event_sequence_is_answered(seq):
    d = daemon(rate_limit=0)
    s, _ = connect(d)
    snd, _ = connect(d, {"role": "sender", "token": "lqdoj"}, sid="snd")
    for i, (name, payload) in enumerate(seq):
        args = () if payload is None else (payload,)
        emit(d, s, name, *args)
        r = emit(d, snd, name, *args, ack_id=i)
        if r.post:
            d.posted(r.post, d.last_id + 1)


# -- legacy ------------------------------------------------------------------------
def legacy_rcv():
    return LegacyReceiver(object(), RateLimiter(0, 0.0))


def test_legacy_receiver_catch_up_and_errors():
    d = daemon()
    post(d, "X", "a", START + 1)
    post(d, "Y", "b", START + 2)
    post(d, "X", "c", START + 3)
    r = legacy_rcv()
    assert d.legacy_command(r, '{"command":"start_msg","start":0}', 0) == ([], False, False)
    frames, _, _ = d.legacy_command(r, '{"command":"set-filter","filter":["X"]}', 0)
    assert [json.loads(f)["message"] for f in frames] == ["a", "c"]
    assert r.last_msg == START + 3
    assert d.legacy_command(r, "{}", 0)[0] == [
        '{"status":"error","code":"syntax-error","message":"no command specified"}'
    ]
    assert json.loads(d.legacy_command(r, "{bad", 0)[0][0])["code"] == "syntax-error"
    assert d.legacy_command(r, '{"command":"post"}', 0)[0] == [
        '{"status":"error","code":"bad-command","message":"bad command: post"}'
    ]
    assert json.loads(d.legacy_command(r, '{"command":"set-filter","filter":[]}', 0)[0][0]) == {
        "status": "error", "code": "invalid-filter", "message": "invalid filter: "}
    assert json.loads(d.legacy_command(r, '{"command":"set-filter"}', 0)[0][0])["message"] == (
        "invalid filter: undefined")
    # Messages on other channels still advance last_msg: no re-delivery after a new filter.
    post(d, "Y", "d", START + 4)
    frames, _, _ = d.legacy_command(r, '{"command":"set-filter","filter":["X","Y"]}', 0)
    assert frames == []


def test_legacy_sender_auth():
    d = daemon()
    s = LegacySender(object(), RateLimiter(0, 0.0), authed=False)
    reply, p, _, _ = d.sender_command(s, '{"command":"post","channel":"X","message":1}', 0)
    assert json.loads(reply) == {"status": "error", "code": "unauthorized"} and p is None
    assert json.loads(d.sender_command(s, '{"command":"auth","key":"bad"}', 0)[0]) == {
        "status": "error", "code": "auth-failed"}
    assert json.loads(d.sender_command(s, '{"command":"auth","key":"lqdoj"}', 0)[0]) == {"status": "success"}
    reply, p, _, _ = d.sender_command(s, '{"command":"post","channel":"X","message":1}', 0)
    assert reply is None and p.channel == "X"
    assert json.loads(d.sender_command(s, '{"command":"post","channel":null}', 0)[0])["code"] == "invalid-channel"
    assert json.loads(d.sender_command(s, '{"command":"last-msg"}', 0)[0]) == {"status": "success", "id": START}
    open_d = daemon(sender_token=None)
    s2 = LegacySender(object(), RateLimiter(0, 0.0), authed=True)
    assert json.loads(open_d.sender_command(s2, '{"command":"auth","key":"any"}', 0)[0]) == {"status": "success"}


def test_long_poll_wait():
    d = daemon()
    post(d, "X", "a", START + 1)
    post(d, "X", "b", START + 2)
    assert d.wait("t", frozenset({"X"}), START).message == "a"
    assert d.wait("t", frozenset({"X", "Z"}), START + 2) is None
    delivery = post(d, "Z", "z", START + 3)
    assert delivery.waiters == ["t"] and json.loads(delivery.legacy_frame)["message"] == "z"
    assert d.waiting == {}
    assert d.waiter_count == 0


def test_long_poll_channels_follow_set_filter_rules():
    d = daemon(max_subscriptions=3, max_channel=5)
    assert d.check_channels(["a", "b", "c"]) is None
    assert d.check_channels(["a", "b", "c", "d"])["code"] == "too-many-subscriptions"
    assert d.check_channels(["a", "toolong"])["code"] == "invalid-channel"
    assert d.check_channels([])["code"] == "invalid-filter"


def test_unwait_leaves_other_waiters_and_channels_alone():
    d = daemon()
    for i in range(100):
        assert d.wait(f"w{i}", frozenset({f"c{i}", "shared"}), START) is None
    d.unwait("w7")
    d.unwait("w7")  # twice is harmless
    d.unwait("never-waited")
    assert "c7" not in d.waiting and "w7" not in d.waiting["shared"]
    assert d.waiter_count == 99 and len(d.waiting["shared"]) == 99
    assert d.waiting["c8"] == {"w8": frozenset({"c8", "shared"})}
    delivery = post(d, "shared", "s", START + 1)
    assert sorted(delivery.waiters) == sorted(f"w{i}" for i in range(100) if i != 7)
    assert d.waiting == {} and d.waiter_count == 0


def test_rewait_replaces_the_old_channels():
    d = daemon()
    d.wait("t", frozenset({"A", "B"}), START)
    d.wait("t", frozenset({"C"}), START)
    assert d.waiting == {"C": {"t": frozenset({"C"})}} and d.waiter_count == 1


def test_waiters_are_capped_at_max_clients_but_queued_answers_are_not():
    d = daemon(max_clients=2)
    d.wait("a", frozenset({"X"}), START)
    d.wait("b", frozenset({"Y"}), START)
    with pytest.raises(WaitersFull):
        d.wait("c", frozenset({"Z"}), START)
    assert d.waiter_count == 2 and "Z" not in d.waiting
    post(d, "Q", "q", START + 1)
    assert d.wait("c", frozenset({"Q"}), START).message == "q"
    d.unwait("a")
    assert d.wait("c", frozenset({"Z"}), START + 1) is None


@pytest.mark.parametrize("text,value", [("12abc", 12), ("abc", 0), ("", 0), ("-5", 0), (" 42", 42), (7, 7)])
def test_parse_int(text, value):
    assert parse_int(text) == value


def test_queue_stays_in_id_order_when_posts_arrive_out_of_order():
    """Several nodes: a node's own post can arrive before an earlier one from another node."""
    d = daemon(max_queue=4)
    for i in (1, 3, 2, 5, 4):
        post(d, "X", i, START + i)
    assert [m.id - START for m in d.queue] == [2, 3, 4, 5]
    post(d, "X", 0, START)  # older than all kept: dropped as the oldest
    assert [m.id - START for m in d.queue] == [2, 3, 4, 5]
    s, _ = connect(d)
    emit(d, s, "start-msg", {"start": START + 2})
    reply = emit(d, s, "set-filter", {"filter": ["X"]})
    assert [json.loads(p[1:])[1]["message"] for p in reply.packets[1:]] == [3, 4, 5]


@given(st.integers(0, 3), st.lists(st.one_of(
    st.tuples(st.just("post"), st.sampled_from("ABC")),
    st.tuples(st.just("filter"), st.lists(st.sampled_from("ABC"), min_size=1, max_size=3)),
), max_size=60))
def test_a_socket_sees_each_message_once_in_order(start_after, ops):
    """Whatever mix of posts and set-filters: ids a socket receives only increase."""
    d = daemon(max_queue=5, rate_limit=0)
    next_id = START
    for _ in range(start_after):
        next_id += 1
        post(d, "A", None, next_id)
    s, _ = connect(d)
    emit(d, s, "start-msg", {"start": 0})
    got: list[int] = []
    for op, arg in ops:
        if op == "post":
            next_id += 1
            if s in post(d, arg, None, next_id).sockets:
                got.append(next_id)
        else:
            reply = emit(d, s, "set-filter", {"filter": arg})
            got += [json.loads(p[1:])[1]["id"] for p in reply.packets if p.startswith('2["message"')]
            assert s.channels == set(arg)
    assert got == sorted(set(got))


def test_legacy_replies_say_whether_they_are_errors():
    """The adapter counts protocol errors from this flag, not by reading the reply text."""
    d = daemon()
    r = legacy_rcv()
    assert d.legacy_command(r, "{bad", 0).error
    assert d.legacy_command(r, '{"command":"nope"}', 0).error
    assert d.legacy_command(r, '{"command":"set-filter","filter":[]}', 0).error
    assert not d.legacy_command(r, '{"command":"set-filter","filter":["X"]}', 0).error
    s = LegacySender(object(), RateLimiter(0, 0.0), authed=False)
    assert d.sender_command(s, '{"command":"last-msg"}', 0).error  # unauthorized
    assert d.sender_command(s, '{"command":"auth","key":"bad"}', 0).error
    assert not d.sender_command(s, '{"command":"auth","key":"lqdoj"}', 0).error
    posted = d.sender_command(s, '{"command":"post","channel":"X","message":1}', 0)
    assert not posted.error and posted.post is not None and posted.reply is None

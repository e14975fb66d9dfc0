"""The daemon's rules without a network: roles, validation order, catch-up, limits, legacy.

The daemon sees connection ids and answers in effects; these tests read the
effects: what is sent to which id, what is broadcast to which group, published, closed, armed.
"""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.effects import Arm, Broadcast, Close, ConnId, Publish, Send
from freescore.events import socketio as sio
from freescore.events.logic import (
    HUB_CHANNEL,
    LEGACY,
    SOCKETIO,
    WAIT_TIMEOUT,
    WAITERS,
    Daemon,
    Post,
    RateLimiter,
    coerce_start,
    parse_int,
)
from freescore.events.settings import Settings
from freescore.events.wire import DaemonError
from freescore.wireformat import CloseCode

START = 1_750_000_000_000


def daemon(max_channel=None, **kw):
    kw.setdefault("sender_token", "lqdoj")
    d = Daemon(Settings(**kw), START)
    if max_channel is not None:
        d.max_channel = max_channel
    return d


def connect(d, auth=None, sid="s1", ns="/"):
    """CONNECT as connection id `sid`: (the socket, or None if refused; the effects)."""
    data = auth if auth is not None else None
    packet = sio.Packet(sio.CONNECT, ns, None, data, data is not None)
    fx = d.connect(ConnId(sid), packet, sid, 0.0)
    return d.sockets.get(sid), fx


def emit(d, cid, name, *args, ack_id=None, now=0.0):
    return d.handle(cid, sio.decode(sio.event(name, *args, ack_id=ack_id)), now)


def sent(fx, to=None):
    """The frames the effects send (to one id, or to anyone)."""
    return [e.frame for e in fx if isinstance(e, Send) and (to is None or e.to == to)]


def published(fx):
    return [e.message for e in fx if isinstance(e, Publish) and e.channel == HUB_CHANNEL]


def closes(fx):
    return [(e.to, e.code, e.reason) for e in fx if isinstance(e, Close)]


def broadcast(fx, kind):
    """(members, frame) of the one broadcast to subscribers of `kind`, or None."""
    found = [(e.group.members, e.frame) for e in fx if isinstance(e, Broadcast) and e.group.kind == kind]
    assert len(found) <= 1
    return found[0] if found else None


def post(d, channel, message, msg_id):
    return d.deliver(msg_id, channel, message)


def members(fx, kind=SOCKETIO):
    got = broadcast(fx, kind)
    return [] if got is None else list(got[0])


def test_sender_auth_and_failures():
    d = daemon()
    sock, fx = connect(d, {"role": "sender", "token": "lqdoj"})
    assert sock.role == "sender" and fx == [Send("s1", '0{"sid":"s1"}')]
    for auth in ({"role": "sender", "token": "nope"}, {"role": "sender"}, {"role": "sender", "token": 5}):
        sock, fx = connect(d, auth, sid="s2")
        assert sock is None and fx == [Send("s2", '4{"message":"Authentication failed"}')]
    assert d.clients == 0 and d.role("s1") == "sender" and d.role("s2") is None


def test_no_token_configured_refuses_senders():
    d = daemon(sender_token=None)
    sock, fx = connect(d, {"role": "sender", "token": "lqdoj"})
    assert sock is None


def test_clients_and_bad_namespace():
    d = daemon()
    sock, fx = connect(d)
    assert sock.role == "client" and d.clients == 1
    sock, fx = connect(d, {"role": "client"}, sid="s2")
    assert sock.role == "client"
    sock, fx = connect(d, ns="/admin", sid="s3")
    assert sock is None and sent(fx) == ['4/admin,{"message":"Invalid namespace"}']


def test_capacity_accepts_then_errors_and_disconnects_senders_exempt():
    d = daemon(max_clients=1)
    connect(d, sid="a")
    sock, fx = connect(d, sid="b")
    assert sock is None and closes(fx) == [("b", CloseCode.NORMAL, "refused")]
    assert sent(fx, "b") == [
        '0{"sid":"b"}',
        '2["error",{"status":"error","code":"server-capacity","message":"Server at capacity"}]',
        "1",
    ]
    assert isinstance(fx[-1], Close)  # after the packets that say why
    sender, _ = connect(d, {"role": "sender", "token": "lqdoj"}, sid="c")
    assert sender is not None


def test_receive_joins_once_and_leaves_on_disconnect():
    d = daemon()
    sids = iter(["x1", "x2"])
    assert d.receive("c", sio.decode("2[\"last-msg\"]"), 0.0, lambda: next(sids)) == []  # not joined: ignored
    assert sent(d.receive("c", sio.decode("0"), 0.0, lambda: next(sids))) == ['0{"sid":"x1"}']
    assert d.receive("c", sio.decode("0"), 0.0, lambda: next(sids)) == []  # a second CONNECT: ignored
    assert d.role("c") == "client" and d.clients == 1
    assert d.receive("c", sio.decode("1"), 0.0, lambda: next(sids)) == []
    assert d.role("c") is None and d.clients == 0


def test_post_with_ack_and_without():
    d = daemon()
    connect(d, {"role": "sender", "token": "lqdoj"})
    fx = emit(d, "s1", "post", {"channel": "sub", "message": {"x": 1}}, ack_id=1)
    [p] = published(fx)
    assert p == Post("s1", "sub", {"x": 1}, 1) and p.payload() == {"channel": "sub", "message": {"x": 1}}
    post(d, "sub", {"x": 1}, START + 1)
    assert d.posted(p, START + 1) == [Send("s1", f'31[{{"status":"success","id":{START + 1}}}]')]
    [p] = published(emit(d, "s1", "post", {"channel": "sub", "message": 2}))
    assert sent(d.posted(p, START + 2)) == [f'2["post-response",{{"status":"success","id":{START + 2}}}]']
    assert sent(emit(d, "s1", "last-msg", ack_id=7)) == [f'37[{{"status":"success","id":{START + 2}}}]']
    assert sent(emit(d, "s1", "last-msg")) == [f'2["last-response",{{"status":"success","id":{START + 2}}}]']


def test_a_post_is_answered_only_while_its_sender_is_here():
    d = daemon()
    connect(d, {"role": "sender", "token": "lqdoj"})
    [p] = published(emit(d, "s1", "post", {"channel": "sub", "message": 1}, ack_id=4))
    assert sent(d.unpublished(p)) == ['34[{"status":"error","code":"unavailable","message":"Event hub unavailable"}]']
    d.disconnect("s1")
    assert d.posted(p, START + 1) == [] and d.last_id == START + 1
    assert d.posted(Post(None, "sub", 1, id=START + 2), START + 2) == []  # AMQP: nobody to answer


@pytest.mark.parametrize("payload", [None, 5, "x", [], {"channel": None}, {"channel": ""}, {"channel": "x" * 101},
                                     {"message": 1}, {"channel": 3}])
def test_bad_post_is_invalid_channel(payload):
    d = daemon()
    connect(d, {"role": "sender", "token": "lqdoj"})
    args = () if payload is None else (payload,)
    fx = emit(d, "s1", "post", *args, ack_id=3)
    assert published(fx) == []
    assert sent(fx) == ['33[{"status":"error","code":"invalid-channel","message":"Invalid channel"}]']
    fx = emit(d, "s1", "post", *args)
    assert json.loads(sent(fx)[0][1:])[0] == "error"


def test_last_msg_before_any_post_is_the_counter():
    d = daemon()
    connect(d)
    assert sent(emit(d, "s1", "last-msg", ack_id=0)) == [f'2["last-response",{{"status":"success","id":{START}}}]']


def test_client_post_is_unauthorized():
    d = daemon()
    connect(d)
    assert sent(emit(d, "s1", "post", {"channel": "a", "message": 1})) == [
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
    emit(d, "s1", "set-filter", {"filter": ["old"]})
    args = () if payload is None else (payload,)
    fx = emit(d, "s1", "set-filter", *args)
    name, body = json.loads(sent(fx)[0][1:])
    assert name == "error" and body["code"] == code and body["status"] == "error"
    assert c.channels == {"old"} and "s1" in d.index["old"]


def test_too_many_message_text():
    d = daemon()
    connect(d)
    fx = emit(d, "s1", "set-filter", {"filter": [str(i) for i in range(11)]})
    assert json.loads(sent(fx)[0][1:])[1]["message"] == "Maximum 10 subscriptions per connection"


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
    assert sent(emit(d, "s1", "start-msg", {"start": a})) == ['2["status",{"status":"success"}]']
    fx = emit(d, "s1", "set-filter", {"filter": ["X", "X"]})
    assert [json.loads(p[1:]) for p in sent(fx)] == [
        ["status", {"status": "success"}],
        ["message", {"id": c, "channel": "X", "message": "c"}],
    ]
    assert s.last_msg == c
    live = post(d, "X", "d", START + 4)
    assert broadcast(live, SOCKETIO) == (("s1",), f'2["message",{{"id":{START + 4},"channel":"X","message":"d"}}]')
    # A repeated set-filter re-delivers nothing; a new filter stops X.
    assert len(sent(emit(d, "s1", "set-filter", {"filter": ["X"]}))) == 1
    assert b > a
    emit(d, "s1", "set-filter", {"filter": ["Y"]})
    assert post(d, "X", "e", START + 5) == []


def test_one_broadcast_per_kind_however_many_subscribers():
    d = daemon(max_clients=1000)
    for i in range(300):
        connect(d, sid=f"c{i}")
        emit(d, f"c{i}", "set-filter", {"filter": ["X"]})
    for i in range(200):
        d.legacy_open(f"r{i}", 0.0)
        d.legacy_command(f"r{i}", '{"command":"set-filter","filter":["X"]}', 0.0)
    for i in range(100):
        d.wait(f"w{i}", ["X"], START)
    fx = post(d, "X", "m", START + 1)
    assert [(type(e), e.group.kind, len(e.group.members)) for e in fx] == [
        (Broadcast, SOCKETIO, 300), (Broadcast, LEGACY, 200), (Broadcast, WAITERS, 100)]
    assert d.waiter_count == 0 and all(d.sockets[f"c{i}"].last_msg == START + 1 for i in range(300))


def test_queue_is_bounded():
    d = daemon(max_queue=3)
    for i in range(1, 6):
        post(d, "X", i, START + i)
    connect(d)
    fx = emit(d, "s1", "set-filter", {"filter": ["X"]})
    assert [json.loads(p[1:])[1]["message"] for p in sent(fx)[1:]] == [3, 4, 5]


def test_disconnect_cleans_index_and_count():
    d = daemon()
    connect(d)
    emit(d, "s1", "set-filter", {"filter": ["X"]})
    d.disconnect("s1")
    d.disconnect("s1")
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
    connect(d)
    replies = [emit(d, "s1", "last-msg") for _ in range(30)]
    codes = [json.loads(sent(r)[0][1:])[1].get("code") for r in replies if sent(r)]
    assert "rate-limited" in codes
    assert closes(replies[-1]) == [("s1", CloseCode.NORMAL, "rate limited")]


@pytest.mark.parametrize("attempt", [
    [sio.Packet(sio.CONNECT, "/nope", None, None, False)],
    [sio.Packet(sio.CONNECT, "/", None, None, False), sio.Packet(sio.DISCONNECT, "/", None, None, False)],
])
def test_connect_attempts_are_rate_limited_then_closed(attempt):
    """Each CONNECT is answered, refused or joined; a flood of them would pile answers up unread."""
    d = daemon(rate_limit=1.0)
    replies = [d.receive(ConnId("j"), packet, 0.0, lambda: "sid") for _ in range(40) for packet in attempt]
    answered = [r for r in replies if sent(r)]
    assert 0 < len(answered) <= 5 and closes(replies[-len(attempt)]) == [("j", CloseCode.NORMAL, "rate limit exceeded")]
    assert d.clients == 0 and "j" in d.connects
    d.disconnect(ConnId("j"))
    assert d.connects == {}


@given(st.lists(st.tuples(st.sampled_from(["start-msg", "set-filter", "last-msg", "post", "x"]),
                          st.none() | st.integers() | st.text() | st.dictionaries(
                              st.sampled_from(["start", "filter", "channel", "message"]),
                              st.none() | st.integers() | st.text(max_size=3) | st.lists(st.text(max_size=3)))),
                max_size=20))
def test_any_client_event_sequence_is_answered(seq):
    d = daemon(rate_limit=0)
    connect(d)
    connect(d, {"role": "sender", "token": "lqdoj"}, sid="snd")
    for i, (name, payload) in enumerate(seq):
        args = () if payload is None else (payload,)
        emit(d, "s1", name, *args)
        for p in published(emit(d, "snd", name, *args, ack_id=i)):
            assert d.posted(p, d.last_id + 1) == [Send("snd", f'3{i}[{{"status":"success","id":{d.last_id}}}]')]


# -- legacy ------------------------------------------------------------------------
def legacy_rcv(d, cid="r"):
    d.legacy_open(cid, 0.0)
    return d.receivers[cid]


def legacy(d, frame, cid="r"):
    return sent(d.legacy_command(cid, frame, 0))


def test_legacy_receiver_catch_up_and_errors():
    d = daemon(rate_limit=0)
    post(d, "X", "a", START + 1)
    post(d, "Y", "b", START + 2)
    post(d, "X", "c", START + 3)
    r = legacy_rcv(d)
    assert d.legacy_command("r", '{"command":"start_msg","start":0}', 0) == []
    frames = legacy(d, '{"command":"set-filter","filter":["X"]}')
    assert [json.loads(f)["message"] for f in frames] == ["a", "c"]
    assert r.last_msg == START + 3
    assert legacy(d, "{}") == ['{"status":"error","code":"syntax-error","message":"no command specified"}']
    assert json.loads(legacy(d, "{bad")[0])["code"] == "syntax-error"
    assert legacy(d, '{"command":"post"}') == ['{"status":"error","code":"bad-command","message":"bad command: post"}']
    assert json.loads(legacy(d, '{"command":"set-filter","filter":[]}')[0]) == {
        "status": "error", "code": "invalid-filter", "message": "invalid filter: "}
    assert json.loads(legacy(d, '{"command":"set-filter"}')[0])["message"] == "invalid filter: undefined"
    # Messages on other channels still advance last_msg: no re-delivery after a new filter.
    post(d, "Y", "d", START + 4)
    assert legacy(d, '{"command":"set-filter","filter":["X","Y"]}') == []
    assert members(post(d, "Y", "e", START + 5), LEGACY) == ["r"]
    d.legacy_gone("r")
    assert d.legacy_index == {} and post(d, "Y", "f", START + 6) == []


def test_legacy_flood_is_told_once_then_closed_1008():
    d = daemon(rate_limit=1.0)
    legacy_rcv(d)
    answers = [d.legacy_command("r", '{"command":"start-msg","start":0}', 0) for _ in range(12)]
    assert sum(1 for a in answers if a.error) == 1
    assert closes(answers[-1]) == [("r", CloseCode.POLICY_VIOLATION, "rate limit exceeded")]


def sender(d, authed=False, cid="snd"):
    d.legacy_open(cid, 0.0, sender=True)
    d.senders[cid].authed = authed
    return cid


def sender_says(d, frame, cid="snd"):
    return sent(d.legacy_command(cid, frame, 0))


def test_legacy_sender_auth():
    d = daemon()
    sender(d)
    fx = d.legacy_command("snd", '{"command":"post","channel":"X","message":1}', 0)
    assert [json.loads(f) for f in sent(fx)] == [{"status": "error", "code": "unauthorized"}] and not published(fx)
    assert json.loads(sender_says(d, '{"command":"auth","key":"bad"}')[0]) == {"status": "error", "code": "auth-failed"}
    assert json.loads(sender_says(d, '{"command":"auth","key":"lqdoj"}')[0]) == {"status": "success"}
    fx = d.legacy_command("snd", '{"command":"post","channel":"X","message":1}', 0)
    assert sent(fx) == [] and published(fx) == [Post("snd", "X", 1)]
    assert d.posted(published(fx)[0], START + 1) == [Send("snd", f'{{"status":"success","id":{START + 1}}}')]
    assert json.loads(sender_says(d, '{"command":"post","channel":null}')[0])["code"] == "invalid-channel"
    assert json.loads(sender_says(d, '{"command":"last-msg"}')[0]) == {"status": "success", "id": START + 1}
    open_d = daemon(sender_token=None)
    open_d.legacy_open("s2", 0.0, sender=True)
    assert json.loads(sender_says(open_d, '{"command":"auth","key":"any"}', "s2")[0]) == {"status": "success"}
    assert published(open_d.legacy_command("s2", '{"command":"post","channel":"X","message":1}', 0))


def test_long_poll_wait():
    d = daemon()
    post(d, "X", "a", START + 1)
    post(d, "X", "b", START + 2)
    assert [json.loads(f)["message"] for f in sent(d.wait("t", ["X"], START))] == ["a"]
    assert d.wait("t", ["X", "Z"], START + 2) == [Arm("t", 29.0, WAIT_TIMEOUT)]
    delivery = post(d, "Z", "z", START + 3)
    got = broadcast(delivery, WAITERS)
    assert got[0] == ("t",) and json.loads(got[1])["message"] == "z"
    assert d.waiting == {}
    assert d.waiter_count == 0
    assert d.fired("t", WAIT_TIMEOUT) == []  # answered already: its timer means nothing now


def test_long_poll_times_out_with_a_close():
    d = daemon(channels_timeout=5000)
    assert d.wait("t", ["X"], START) == [Arm("t", 5.0, WAIT_TIMEOUT)]
    assert closes(d.fired("t", WAIT_TIMEOUT)) == [("t", CloseCode.GOING_AWAY, "timeout")]
    assert d.waiter_count == 0 and post(d, "X", "x", START + 1) == []


def test_long_poll_channels_follow_set_filter_rules():
    d = daemon(max_subscriptions=3, max_channel=5)
    assert d.wait("w", ["a", "b", "c"], START) != []
    for channels, code in ((["a", "b", "c", "d"], "too-many-subscriptions"), (["a", "toolong"], "invalid-channel"),
                           ([], "invalid-filter")):
        with pytest.raises(DaemonError) as e:
            d.wait("v", channels, START)
        assert (e.value.status, e.value.error["code"]) == (400, code)


def test_unwait_leaves_other_waiters_and_channels_alone():
    d = daemon()
    for i in range(100):
        assert sent(d.wait(f"w{i}", [f"c{i}", "shared"], START)) == []
    d.unwait("w7")
    d.unwait("w7")  # twice is harmless
    d.unwait("never-waited")
    assert "c7" not in d.waiting and "w7" not in d.waiting["shared"]
    assert d.waiter_count == 99 and len(d.waiting["shared"]) == 99
    assert d.waiting["c8"] == {"w8": frozenset({"c8", "shared"})}
    delivery = post(d, "shared", "s", START + 1)
    assert sorted(members(delivery, WAITERS)) == sorted(f"w{i}" for i in range(100) if i != 7)
    assert d.waiting == {} and d.waiter_count == 0


def test_rewait_replaces_the_old_channels():
    d = daemon()
    d.wait("t", ["A", "B"], START)
    d.wait("t", ["C"], START)
    assert d.waiting == {"C": {"t": frozenset({"C"})}} and d.waiter_count == 1


def test_waiters_are_capped_at_max_clients_but_queued_answers_are_not():
    d = daemon(max_clients=2)
    d.wait("a", ["X"], START)
    d.wait("b", ["Y"], START)
    with pytest.raises(DaemonError) as e:
        d.wait("c", ["Z"], START)
    assert (e.value.status, e.value.error["code"]) == (503, "server-capacity")
    assert d.waiter_count == 2 and "Z" not in d.waiting
    post(d, "Q", "q", START + 1)
    assert [json.loads(f)["message"] for f in sent(d.wait("c", ["Q"], START))] == ["q"]
    d.unwait("a")
    assert sent(d.wait("c", ["Z"], START + 1)) == []


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
    connect(d)
    emit(d, "s1", "start-msg", {"start": START + 2})
    fx = emit(d, "s1", "set-filter", {"filter": ["X"]})
    assert [json.loads(p[1:])[1]["message"] for p in sent(fx)[1:]] == [3, 4, 5]


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
    emit(d, "s1", "start-msg", {"start": 0})
    got: list[int] = []
    for op, arg in ops:
        if op == "post":
            next_id += 1
            if "s1" in members(post(d, arg, None, next_id)):
                got.append(next_id)
        else:
            fx = emit(d, "s1", "set-filter", {"filter": arg})
            got += [json.loads(p[1:])[1]["id"] for p in sent(fx) if p.startswith('2["message"')]
            assert s.channels == set(arg)
    assert got == sorted(set(got))


def test_legacy_replies_say_whether_they_are_errors():
    """The adapter counts protocol errors from this flag, not by reading the reply text."""
    d = daemon()
    legacy_rcv(d)
    assert d.legacy_command("r", "{bad", 0).error
    assert d.legacy_command("r", '{"command":"nope"}', 0).error
    assert d.legacy_command("r", '{"command":"set-filter","filter":[]}', 0).error
    assert not d.legacy_command("r", '{"command":"set-filter","filter":["X"]}', 0).error
    sender(d)
    assert d.legacy_command("snd", '{"command":"last-msg"}', 0).error  # unauthorized
    assert d.legacy_command("snd", '{"command":"auth","key":"bad"}', 0).error
    assert not d.legacy_command("snd", '{"command":"auth","key":"lqdoj"}', 0).error
    posted = d.legacy_command("snd", '{"command":"post","channel":"X","message":1}', 0)
    assert not posted.error and published(posted) and sent(posted) == []

"""The same behaviour from MemoryHub and RedisHub (against a real redis-server)."""

from __future__ import annotations

import pytest_twisted
from hubutil import barrier, listen, now_ms


@pytest_twisted.inlineCallbacks
def test_publish_reaches_each_subscriber_once_with_increasing_ids(make_hub):
    start = now_ms()
    hub = yield make_hub()
    first, _ = yield listen(hub, "scores")
    second, _ = yield listen(hub, "scores")
    other, _ = yield listen(hub, "other")
    sent = []
    for i in range(5):
        sent.append((yield hub.publish("scores", {"n": i, "text": "é"})))
    yield barrier(hub, "scores", first)
    second.pop()
    assert [m.payload for m in first] == [{"n": i, "text": "é"} for i in range(5)]
    assert first == second == sent
    assert other == []
    ids = [m.id for m in sent]
    assert ids == sorted(set(ids))
    assert ids[0] >= start
    assert all(m.channel == "scores" for m in sent)


@pytest_twisted.inlineCallbacks
def test_cancelled_subscription_gets_nothing_more(make_hub):
    hub = yield make_hub()
    kept, _ = yield listen(hub, "c")
    gone, sub = yield listen(hub, "c")
    sub.cancel()
    sub.cancel()  # idempotent
    yield hub.publish("c", 1)
    yield barrier(hub, "c", kept)
    assert [m.payload for m in kept] == [1]
    assert gone == []


@pytest_twisted.inlineCallbacks
def test_failing_listener_does_not_stop_the_others(make_hub):
    hub = yield make_hub()

    def broken(message):
        raise RuntimeError("listener bug")

    hub.subscribe("c", broken)
    got, _ = yield listen(hub, "c")
    yield hub.publish("c", "x")
    yield barrier(hub, "c", got)
    assert [m.payload for m in got] == ["x"]


@pytest_twisted.inlineCallbacks
def test_history_keeps_the_newest_and_honours_after_and_limit(make_hub):
    hub = yield make_hub()
    assert (yield hub.history("h")) == []
    sent = []
    for i in range(7):
        sent.append((yield hub.publish("h", i, keep=4)))
    yield hub.publish("h", "not kept")  # keep=0: delivered, not in history
    history = yield hub.history("h")
    assert history == sent[-4:]
    assert (yield hub.history("h", after=sent[4].id)) == sent[5:]
    assert (yield hub.history("h", after=sent[-1].id)) == []
    assert (yield hub.history("h", limit=2)) == sent[-2:]
    assert (yield hub.history("h", after=sent[3].id, limit=10)) == sent[4:]
    assert (yield hub.history("h", limit=0)) == []
    assert (yield hub.history("h", after=-5)) == sent[-4:]  # catch-up ids come from clients
    assert (yield hub.history("h", after=10**30)) == []
    assert (yield hub.history("h", limit=10**30)) == sent[-4:]
    assert (yield hub.history("other")) == []


@pytest_twisted.inlineCallbacks
def test_presence_join_leave_members(make_hub):
    hub = yield make_hub()
    assert (yield hub.members("room")) == {}
    yield hub.join("room", "alice", {"seat": 1})
    yield hub.join("room", "bob")
    yield hub.join("hall", "carol", ["x"])
    assert (yield hub.members("room")) == {"alice": {"seat": 1}, "bob": None}
    yield hub.join("room", "alice", {"seat": 2})  # re-join updates the info
    yield hub.leave("room", "bob")
    yield hub.leave("room", "nobody")
    assert (yield hub.members("room")) == {"alice": {"seat": 2}}
    assert (yield hub.members("hall")) == {"carol": ["x"]}
    yield hub.leave("room", "alice")
    assert (yield hub.members("room")) == {}


@pytest_twisted.inlineCallbacks
def test_member_looks_up_one_present_member(make_hub):
    hub = yield make_hub()
    assert (yield hub.member("room", "alice")) is None
    yield hub.join("room", "alice", {"seat": 1, "name": "é"})
    yield hub.join("room", "bob", ["x"])
    yield hub.join("hall", "carol", {"seat": 3})
    assert (yield hub.member("room", "alice")) == {"seat": 1, "name": "é"}
    assert (yield hub.member("room", "bob")) == ["x"]
    assert (yield hub.member("room", "carol")) is None  # present, but in another space
    assert (yield hub.member("nowhere", "alice")) is None
    yield hub.join("room", "alice", {"seat": 2})
    assert (yield hub.member("room", "alice")) == {"seat": 2}
    yield hub.leave("room", "alice")
    assert (yield hub.member("room", "alice")) is None
    assert (yield hub.member("room", "bob")) == ["x"]
    assert (yield hub.members("room")) == {"bob": ["x"]}


@pytest_twisted.inlineCallbacks
def test_get_set(make_hub):
    hub = yield make_hub()
    assert (yield hub.get("secret")) is None
    yield hub.set("secret", "s3cr3t")
    yield hub.set("number", "0123")  # stays a string
    assert (yield hub.get("secret")) == "s3cr3t"
    assert (yield hub.get("number")) == "0123"
    yield hub.set("secret", "")
    assert (yield hub.get("secret")) == ""


@pytest_twisted.inlineCallbacks
def test_is_up_and_node(make_hub):
    hub = yield make_hub("node-x")
    assert hub.is_up()
    assert hub.node == "node-x"

"""The embedded hub's promises: fan-out, increasing ids, bounded history, presence."""

from freescore.hub.memory import MemoryHub


def result(d):
    out = []
    d.addCallback(out.append)
    assert out, "memory hub results are immediate"
    return out[0]


def test_publish_reaches_each_subscriber_of_the_channel_only():
    hub = MemoryHub(start_ms=1000)
    got_a, got_b = [], []
    hub.subscribe("a", got_a.append)
    hub.subscribe("b", got_b.append)
    msg = result(hub.publish("a", {"x": 1}))
    assert got_a == [msg] and got_b == []
    assert msg.payload == {"x": 1} and msg.channel == "a"


def test_ids_start_at_start_time_and_increase_across_channels():
    hub = MemoryHub(start_ms=1_700_000_000_000)
    ids = [result(hub.publish(ch, i)).id for i, ch in enumerate("abab")]
    assert ids[0] == 1_700_000_000_000
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_cancelled_subscription_gets_nothing_and_failing_listener_does_not_stop_others():
    hub = MemoryHub(0)
    got = []
    sub = hub.subscribe("c", got.append)

    def broken(_msg):
        raise RuntimeError("listener bug")

    hub.subscribe("c", broken)
    other = []
    hub.subscribe("c", other.append)
    result(hub.publish("c", 1))
    sub.cancel()
    result(hub.publish("c", 2))
    assert [m.payload for m in got] == [1]
    assert [m.payload for m in other] == [1, 2]


def test_history_is_bounded_and_filters_by_id():
    hub = MemoryHub(0)
    for i in range(10):
        hub.publish("h", i, keep=3)
    hub.publish("h", "not kept")
    kept = result(hub.history("h"))
    assert [m.payload for m in kept] == [7, 8, 9]
    after = result(hub.history("h", after=kept[0].id))
    assert [m.payload for m in after] == [8, 9]
    assert [m.payload for m in result(hub.history("h", limit=1))] == [9]
    assert result(hub.history("nothing")) == []


def test_presence_join_leave_members():
    hub = MemoryHub(0)
    result(hub.join("devices", "abc", {"node": "n1"}))
    result(hub.join("devices", "def"))
    assert result(hub.members("devices")) == {"abc": {"node": "n1"}, "def": None}
    result(hub.leave("devices", "abc"))
    result(hub.leave("devices", "never-joined"))
    assert result(hub.members("devices")) == {"def": None}


def test_key_value_store():
    hub = MemoryHub(0)
    assert result(hub.get("k")) is None
    result(hub.set("k", "v"))
    assert result(hub.get("k")) == "v"

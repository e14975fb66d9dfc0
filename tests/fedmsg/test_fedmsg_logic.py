"""fedmsg subscriptions: the prefix index agrees with the naive rule of spec §3."""

from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.effects import Broadcast, Close, Publish
from freescore.fedmsg import wire
from freescore.fedmsg.logic import CHANNEL, Bus, Subscribed, SubscriptionIndex, matches
from freescore.wireformat import CloseCode

BODHI = "org.fedoraproject.prod.bodhi.update.comment"
KOJI = "org.fedoraproject.prod.koji.build.state.change"


def test_spec_table_non_strict():
    assert matches("*", BODHI, False)
    assert matches("org.fedoraproject.prod.bodhi.*", BODHI, False)
    assert not matches("org.fedoraproject.prod.bodhi.*", KOJI, False)
    assert matches("org.fedoraproject.prod.bodhi", "org.fedoraproject.prod.bodhifoo.x", False)
    assert not matches("org.*.bodhi.update", BODHI, False)
    assert matches("", BODHI, False)


def test_spec_table_strict():
    assert matches("*", BODHI, True)
    assert matches("**", BODHI, True)
    assert not matches("", BODHI, True)
    assert not matches("org.fedoraproject.prod.bodhi.*", BODHI, True)
    assert matches("org.fedoraproject.prod.bodhi.*", "org.fedoraproject.prod.bodhi.", True)
    assert matches(BODHI, BODHI, True)
    assert not matches("org.fedoraproject.prod.bodhi", "org.fedoraproject.prod.bodhifoo", True)


def test_at_most_once_and_prefix():
    index = SubscriptionIndex()
    index.subscribe("a", "*")
    index.subscribe("a", "org.x")
    index.subscribe("b", "org.x*")
    index.subscribe("c", "org.y")
    assert index.match("org.x") == {"a", "b"}
    assert index.match("org.xyz") == {"a", "b"}
    assert index.match("org.y.z") == {"a", "c"}
    assert index.match("net") == {"a"}


def test_duplicate_unsubscribe_and_remove():
    index = SubscriptionIndex()
    assert index.subscribe("a", "org.x") is Subscribed.ADDED
    assert index.subscribe("a", "org.x") is Subscribed.ALREADY
    assert index.subscribe("a", "org.x*") is Subscribed.ADDED  # same key, another pattern
    assert index.unsubscribe("a", "org.x")
    assert index.match("org.x.1") == {"a"}  # org.x* still there
    assert not index.unsubscribe("a", "org.x")
    assert index.unsubscribe("a", "org.x*")
    assert index.match("org.x.1") == set()
    assert index.keys() == frozenset()
    index.subscribe("a", "p")
    index.subscribe("b", "p")
    index.remove("a")
    assert index.match("p") == {"b"}
    assert index.connections() == 1


def test_limit_per_connection():
    index = SubscriptionIndex(max_patterns=3)
    for i in range(3):
        assert index.subscribe("a", f"t{i}.") is Subscribed.ADDED
    assert index.subscribe("a", "t9.") is Subscribed.LIMIT
    assert index.subscribe("a", "t1.") is Subscribed.ALREADY
    assert index.subscribe("b", "t9.") is Subscribed.ADDED
    assert index.patterns("a") == {"t0.", "t1.", "t2."}


def test_strict_exact():
    index = SubscriptionIndex(strict=True)
    index.subscribe("exact", BODHI)
    index.subscribe("all", "*")
    index.subscribe("none", "")
    assert index.match(BODHI) == {"exact", "all"}
    assert index.match(KOJI) == {"all"}
    index.unsubscribe("all", "*")
    assert index.match(KOJI) == set()


def test_no_stale_keys_after_many_cycles():
    index = SubscriptionIndex()
    for i in range(1000):
        index.subscribe(i, f"org.topic{i}.*")
        index.subscribe(i, "*")
        index.remove(i)
    assert index.keys() == frozenset()
    assert index.connections() == 0
    assert index.match("org.topic5.x") == set()


alphabet = st.text(alphabet="ab.*", max_size=5)
ops = st.lists(
    st.tuples(st.sampled_from(["sub", "unsub", "remove"]), st.integers(0, 4), alphabet), max_size=40
)


@settings(max_examples=300)
@given(ops, st.lists(st.text(alphabet="ab.", max_size=6), min_size=1, max_size=8), st.booleans())
def test_index_agrees_with_naive_matcher(operations, topics, strict):
    index = SubscriptionIndex(strict=strict, max_patterns=4)
    reference: dict[int, set[str]] = {}
    for op, conn, pattern in operations:
        if op == "sub":
            result = index.subscribe(conn, pattern)
            current = reference.setdefault(conn, set())
            if pattern in current:
                assert result is Subscribed.ALREADY
            elif len(current) >= 4:
                assert result is Subscribed.LIMIT
            else:
                assert result is Subscribed.ADDED
                current.add(pattern)
        elif op == "unsub":
            assert index.unsubscribe(conn, pattern) == (pattern in reference.get(conn, set()))
            reference.get(conn, set()).discard(pattern)
        else:
            index.remove(conn)
            reference.pop(conn, None)
        for topic in topics:
            expected = {c for c, pats in reference.items() if any(matches(p, topic, strict) for p in pats)}
            assert index.match(topic) == expected


# -- the bus: frames and messages over connection ids, answered in effects ------------------
def test_a_message_is_one_broadcast_of_one_envelope_to_every_matching_id():
    bus = Bus()
    for i in range(50):
        bus.frame(f"c{i}", wire.Subscribe("org.fedoraproject" if i % 2 else "*"))
    bus.frame("c0", wire.Subscribe("org"))  # two patterns match: still once
    [effect] = bus.deliver("org.fedoraproject.prod.x", '{"a":1}')
    assert isinstance(effect, Broadcast) and sorted(effect.group) == sorted(f"c{i}" for i in range(50))
    assert effect.frame == b'{"topic":"org.fedoraproject.prod.x","body":{"a":1}}'
    assert sorted(bus.deliver("com.example", "1")[0].group) == sorted(f"c{i}" for i in range(0, 50, 2))
    bus.frame("c0", wire.Unsubscribe("*"))
    bus.frame("c0", wire.Unsubscribe("org"))
    bus.gone("c2")
    assert "c0" not in bus.deliver("com.example", "1")[0].group and "c2" not in bus.deliver("x", "1")[0].group


def test_a_browser_publishes_only_with_client2server():
    frame = wire.Publish("org.x", '"hi"')
    assert Bus().frame("c", frame).dropped and Bus().frame("c", frame) == []
    assert Bus(client2server=True).frame("c", frame) == [Publish(CHANNEL, {"topic": "org.x", "body": '"hi"'})]


def test_patterns_over_the_limit_are_refused_and_a_slow_consumer_closes_1013_for_good():
    bus = Bus(max_patterns=1)
    assert not bus.frame("c", wire.Subscribe("a")).limited
    assert bus.frame("c", wire.Subscribe("b")).limited
    assert bus.too_slow("c") == [Close("c", CloseCode.TRY_AGAIN_LATER, "slow consumer")]
    bus.frame("c", wire.Subscribe("a"))  # a subscribe that crossed the close changes nothing
    assert bus.deliver("a", "1") == [] and bus.index.connections() == 0

"""Clicker rules without a network: registry, roles, retry dedup, subscriptions, presence."""

import itertools
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.clicker import logic, wire
from freescore.clicker.logic import (
    Clicker,
    CorruptRegistry,
    IdsExhausted,
    Refused,
    RegisterBudget,
    Registry,
    RetryFilter,
)
from freescore.clicker.wire import Listen, Register, Score
from freescore.effects import Broadcast, ConnId, Publish, Send

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def clicker(**kw):
    return Clicker(Registry(rng=random.Random(1)), **kw)


_names = itertools.count(1)


def conn(c: Clicker, name: str | None = None) -> ConnId:
    """A connection the adapter opened: logic only ever sees its opaque id."""
    cid = ConnId(name or f"k{next(_names)}")
    c.opened(cid)
    return cid


def test_register_new_and_known_secret():
    reg = Registry()
    first = reg.register("")
    assert re.match(r"^\d{6}$", first.device_id) and UUID4.match(first.secret) and first.created
    again = reg.register(first.secret)
    assert again == logic.Registration(first.device_id, first.secret, False)
    unknown = reg.register("not-a-known-secret")
    assert unknown.created and unknown.secret != "not-a-known-secret" and unknown.device_id != first.device_id


def test_ids_never_repeat_and_stay_six_digits():
    reg = Registry(rng=random.Random(3))
    ids = [reg.register("").device_id for _ in range(10000)]
    assert len(set(ids)) == 10000
    assert all(len(i) == 6 and i.isdigit() for i in ids)


def test_dense_registry_still_finds_the_last_free_ids_then_exhausts(monkeypatch):
    monkeypatch.setattr(logic, "ID_SPACE", 50)
    counter = itertools.count()
    reg = Registry(rng=random.Random(5), new_secret=lambda: f"s{next(counter)}")
    ids = {reg.register("").device_id for _ in range(50)}
    assert ids == {f"{i:06d}" for i in range(50)}
    with pytest.raises(IdsExhausted):
        reg.register("")
    assert reg.register("s7").device_id  # known secrets still work


def test_dump_load_round_trip_keeps_ids_allocated():
    reg = Registry()
    regs = [reg.register("") for _ in range(20)]
    loaded = Registry.load(reg.dump())
    assert all(loaded.lookup(r.secret) == r.device_id for r in regs)
    assert loaded.allocated == {r.device_id for r in regs}


@pytest.mark.parametrize("data", [b"", b"[]", b'{"version": 2, "secrets": {}}', b'{"version": 1, "secrets": {"s": 5}}',
                                  b'{"version": 1, "secrets": {"s": "12345"}}'])
def test_load_rejects_corrupt_files(data):
    with pytest.raises(CorruptRegistry):
        Registry.load(data)


def test_load_rejects_an_id_given_to_two_secrets():
    """A hand-edited registry: two devices would share one id; start-up names it (secrets cut short)."""
    named = r"id 000007 is given to two secrets \(secret-a\.\.\. and secret-b\.\.\.\)"
    with pytest.raises(CorruptRegistry, match=named):
        Registry.load(b'{"version": 1, "secrets": {"secret-a-1234": "000007", "secret-b-5678": "000007"}}')


def test_load_rejects_json_nested_deeper_than_python_reads():
    with pytest.raises(CorruptRegistry):  # not a RecursionError: start-up names the file instead of a traceback
        Registry.load(b"[" * 100000)


def test_version_changes_only_on_new_registrations():
    reg = Registry()
    r = reg.register("")
    v = reg.version
    reg.register(r.secret)
    assert reg.version == v


def test_roles_are_fixed():
    c = clicker()
    sender = conn(c, "s")
    reg = c.register(sender, Register(""))
    assert reg is not None and c.sessions[sender].role == logic.SENDER
    assert c.register(sender, Register("")) is None
    assert c.listen(sender, Listen(("x",), wire.DRAFT_2)) is None
    receiver = conn(c, "r")
    assert c.listen(receiver, Listen((), wire.DRAFT_2)) == [Send(receiver, "CONNECT")]
    assert c.register(receiver, Register("")) is None
    assert len(c.registry) == 1


def test_max_devices_refuses_new_ids_but_known_secrets_still_register():
    c = clicker(max_devices=3)
    made = [c.register(conn(c), Register("")) for _ in range(3)]
    assert all(r is not None and not isinstance(r, Refused) and r.created for r in made)
    for secret in ("", "not-a-known-secret"):
        late = conn(c)
        assert c.register(late, Register(secret)) is Refused.FULL
        assert c.sessions[late].role is None and c.sessions[late].device_id is None  # ignored: nothing changed
    assert len(c.registry) == 3
    version = c.registry.version
    again = conn(c)
    known = c.register(again, Register(made[1].secret))
    assert known == logic.Registration(made[1].device_id, made[1].secret, False)
    assert c.sessions[again].role == logic.SENDER and c.registry.version == version


def test_max_devices_counts_ids_loaded_from_disk():
    full = Registry()
    for _ in range(5):
        full.register("")
    c = Clicker(Registry.load(full.dump()), max_devices=5)
    assert c.register(conn(c), Register("")) is Refused.FULL
    c6 = Clicker(Registry.load(full.dump()), max_devices=6)
    assert c6.register(conn(c6), Register("")).created


def test_register_budget_burst_then_rate_per_address():
    budget = RegisterBudget(per_minute=10, burst=3)
    assert [budget.take("10.0.0.1", 100.0) for _ in range(4)] == [True, True, True, False]
    assert budget.take("10.0.0.2", 100.0)  # another address has its own budget
    assert not budget.take("10.0.0.1", 105.9)  # 10 a minute: one every 6 s
    assert budget.take("10.0.0.1", 106.0) and not budget.take("10.0.0.1", 106.0)
    assert [budget.take("10.0.0.1", 1000.0) for _ in range(4)] == [True, True, True, False]  # refills to the burst only
    assert not budget.take("10.0.0.1", 990.0)  # a clock going back gives nothing


def test_register_budget_exempt_networks_and_bounded_memory():
    budget = RegisterBudget(per_minute=1, burst=1, exempt=("127.0.0.0/8", "::1", "192.168.5.0/24"), max_addresses=100)
    for address in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "192.168.5.77"):
        assert all(budget.take(address, 0.0) for _ in range(50)), address
    assert budget.take("192.168.6.1", 0.0) and not budget.take("192.168.6.1", 0.0)
    assert budget.take("unix-socket", 0.0) and not budget.take("unix-socket", 0.0)  # not an IP: budgeted by name
    for i in range(1000):
        budget.take(f"2001:db8::{i:x}", 0.0)
    assert len(budget) == 100


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 600)), max_size=200))
def test_register_budget_never_exceeds_burst_plus_rate(events):
    budget = RegisterBudget(per_minute=6, burst=2)
    now, granted = 0.0, {"a": 0, "b": 0}
    for address, step in events:
        now += step
        granted[address] += budget.take(address, now)
    assert all(n <= 2 + now / 10 for n in granted.values())


def test_rate_budget_refuses_only_new_ids_and_leaves_the_connection_roleless():
    c = clicker(budget=RegisterBudget(per_minute=10, burst=2))
    first = c.register(conn(c), Register(""), "10.0.0.1", 0.0)
    c.register(conn(c), Register("unknown"), "10.0.0.1", 0.0)
    late = conn(c)
    assert c.register(late, Register(""), "10.0.0.1", 1.0) is Refused.RATE
    assert c.sessions[late].role is None and len(c.registry) == 2
    for _ in range(5):  # a known secret costs nothing from the budget
        assert c.register(conn(c), Register(first.secret), "10.0.0.1", 1.0).device_id == first.device_id
    assert c.register(conn(c), Register(""), "10.0.0.2", 1.0).created
    assert c.register(late, Register(""), "10.0.0.1", 7.0).created and c.sessions[late].role == logic.SENDER


def test_full_registry_does_not_spend_the_budget():
    c = clicker(max_devices=1, budget=RegisterBudget(per_minute=1, burst=1))
    c.register(conn(c), Register(""), "10.0.0.9", 0.0)
    assert c.register(conn(c), Register(""), "10.0.0.1", 0.0) is Refused.FULL
    c.max_devices = 2
    assert c.register(conn(c), Register(""), "10.0.0.1", 0.0).created


def test_score_replies_always_relays_only_for_live_senders():
    c = clicker()
    nobody = conn(c)
    assert c.score(nobody, Score("1", "2", "3")) == (Send(nobody, "SCORED 1 2"),)
    assert c.score(nobody, Score("1", "2", "3")) == (Send(nobody, "SCORED 1 2"),)
    sender = conn(c)
    reg = c.register(sender, Register(""))
    assert c.score(sender, Score("1", "2", "3")) == (Send(sender, "SCORED 1 2"),)  # REGISTERED not out yet
    c.registered(sender, reg)
    assert c.score(sender, Score("2", "2", "3")) == (
        Send(sender, "SCORED 2 2"), Publish(logic.CHANNEL, ["score", reg.device_id, "2", "3"]),
    )
    receiver = conn(c)
    c.listen(receiver, Listen((reg.device_id,), wire.DRAFT_1))
    assert c.score(receiver, Score(None, "5", "6")) == (Send(receiver, "SCORED 5"),)


def test_retry_filter_draft2_repeat_until_msgid_goes_down():
    f = RetryFilter()
    s = lambda m, ts="100": Score(m, ts, "1")  # noqa: E731
    assert [f.is_repeat("a", s(m)) for m in ["1", "2", "2", "1", "3"]] == [False, False, True, True, False]
    assert not f.is_repeat("b", s("2"))  # per id
    f2 = RetryFilter()
    seq = [s("5"), s("5"), s("6"), s("1", "7"), s("5", "8"), s("5", "8")]  # reboot at 1: 5 is new again
    assert [f2.is_repeat("x", x) for x in seq] == [False, True, False, False, False, True]


def test_reboot_restarting_at_one_is_relayed_again():
    f = RetryFilter()
    first_boot = [Score(str(m), str(1000 + m), str(m)) for m in range(1, 6)]
    second_boot = [Score(str(m), str(5000 + m), str(m)) for m in range(1, 4)]
    assert [f.is_repeat("a", x) for x in first_boot] == [False] * 5
    assert [f.is_repeat("a", x) for x in second_boot] == [False] * 3
    assert f.is_repeat("a", second_boot[1])  # a retry after the reboot
    assert not f.is_repeat("a", first_boot[4])  # msgId 5 of the old boot: not seen since msgId went down


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["send", "retry", "reboot"]), st.integers(0, 1000)), max_size=80))
def test_retry_filter_relays_exactly_the_non_retries_of_a_device(actions):
    """A simulated firmware: new SCOREs, retries of ones sent since boot, reboots (msgId back to 1)."""
    f = RetryFilter()
    clock = 0
    next_msg = 1
    sent: list[Score] = []
    for action, pick in actions:
        clock += 1
        if action == "reboot":
            next_msg, sent = 1, []
            continue
        if action == "retry" and sent:
            assert f.is_repeat("dev", sent[pick % len(sent)])
            continue
        score = Score(str(next_msg), str(clock), str(pick))
        next_msg += 1
        sent.append(score)
        assert not f.is_repeat("dev", score)


def test_retry_filter_draft1_by_timestamp():
    f = RetryFilter()
    t = lambda ts: Score(None, ts, "1")  # noqa: E731
    assert [f.is_repeat("a", t(x)) for x in ["100", "101", "100", "-5", "-5"]] == [False, False, True, False, True]


def test_retry_filter_memory_is_bounded():
    f = RetryFilter(window=8, max_ids=4)
    for dev in range(10):
        for m in range(100):
            f.is_repeat(f"{dev:06d}", Score(str(m), "1", "1"))
    assert len(f._ids) == 4
    assert all(len(seen.msgs) <= 8 and len(seen.ts_order) <= 8 for seen in f._ids.values())


def test_listen_replaces_set_and_dialect():
    c = clicker()
    r = conn(c, "r")
    d1, d2 = logic.watchers(wire.DRAFT_1, "000001"), logic.watchers(wire.DRAFT_2, "000001")
    c.listen(r, Listen(("000001", "000002"), wire.DRAFT_2))
    assert (c.members(d1), c.members(d2)) == (set(), {"r"})
    c.listen(r, Listen(("000002",), wire.DRAFT_1))
    assert (c.members(d1), c.members(d2)) == (set(), set())
    assert c.members(logic.watchers(wire.DRAFT_1, "000002")) == {"r"}
    assert c.closed(r) == []
    assert not c.groups and not c.sessions


def test_connect_reply_lists_connected_in_request_order():
    c = clicker()
    c.device_up("654321", "n1")
    c.device_up("000007", "n1")
    r = conn(c, "r")
    assert c.listen(r, Listen(("123456", "000007", "654321"), wire.DRAFT_2)) == [Send(r, "CONNECT 000007 654321")]
    assert c.listen(r, Listen(("123456",), wire.DRAFT_2)) == [Send(r, "CONNECT")]


def test_local_sender_counts():
    c = clicker(node="n1")
    a, b = conn(c), conn(c)
    reg = c.register(a, Register(""))
    again = c.register(b, Register(reg.secret))
    assert again.device_id == reg.device_id
    up = Publish(logic.CHANNEL, ["up", reg.device_id, "n1"])
    assert c.registered(a, reg) == [Send(a, f"REGISTERED {reg.device_id} {reg.secret}"), up]
    assert c.registered(b, again) == [Send(b, f"REGISTERED {reg.device_id} {reg.secret}")]
    assert c.closed(a) == []
    assert c.closed(b) == [Publish(logic.CHANNEL, ["down", reg.device_id, "n1"])]
    assert c.closed(b) == []  # closing twice changes nothing
    assert c.local_senders == {}


def test_closing_a_sender_before_registered_went_out_is_silent():
    c = clicker()
    a = conn(c)
    c.register(a, Register(""))
    assert c.closed(a) == []


def test_presence_across_nodes():
    c = clicker()
    assert c.device_up("000001", "n1") is True
    assert c.device_up("000001", "n2") is False
    assert c.device_up("000001", "n2") is False
    assert c.device_down("000001", "n1") is False
    assert c.device_down("000001", "n2") is True
    assert c.device_down("000001", "n2") is False
    assert c.present == {}


def test_reconcile_drops_only_what_other_nodes_held_at_the_query():
    c = Clicker(Registry(), node="me")
    c.device_up("000001", "me")
    c.device_up("000001", "dead")
    c.device_up("000002", "dead")
    c.device_up("000003", "alive")
    believed = c.remote_holdings()
    assert believed == {("000001", "dead"), ("000002", "dead"), ("000003", "alive")}
    c.device_up("000004", "dead")  # arrived after the query: not judged by it
    r = conn(c, "r")
    c.listen(r, Listen(("000001", "000002"), wire.DRAFT_1))
    assert c.reconcile(believed, {("000003", "alive")}) == [
        Broadcast(logic.watchers(wire.DRAFT_1, "000002"), "DISCONNECT 000002"),
    ]
    assert c.present == {"000001": {"me"}, "000003": {"alive"}, "000004": {"dead"}}


def test_relays_and_presence_go_to_watcher_groups_once_per_dialect():
    c = clicker(node="me")
    d2, d1 = conn(c, "d2"), conn(c, "d1")
    c.listen(d2, Listen(("000001", "000002"), wire.DRAFT_2))
    c.listen(d1, Listen(("000001",), wire.DRAFT_1))
    scores = c.on_hub(["scores", [["000001", "10", "7"], ["000002", "11", "8"], ["000003", "12", "9"]]])
    assert scores == [
        Broadcast(logic.watchers(wire.DRAFT_2, "000001"), "SCORE 10 7 000001"),
        Broadcast(logic.watchers(wire.DRAFT_1, "000001"), "SCORE 10 000001 7"),
        Broadcast(logic.watchers(wire.DRAFT_2, "000002"), "SCORE 11 8 000002"),
    ]
    assert c.on_hub(["up", "000002", "other"]) == [Broadcast(logic.watchers(wire.DRAFT_2, "000002"), "CONNECT 000002")]
    assert c.on_hub(["up", "000002", "third"]) == []  # already connected somewhere
    assert c.on_hub(["up", "000001", "me"]) == []  # this node's own: applied when REGISTERED went out
    assert c.on_hub(["down", "000002", "other"]) == []
    assert c.on_hub(["down", "000002", "third"]) == [
        Broadcast(logic.watchers(wire.DRAFT_2, "000002"), "DISCONNECT 000002"),
    ]
    assert c.seed({("000001", "other"), ("000009", "me")}) == [
        Broadcast(logic.watchers(wire.DRAFT_2, "000001"), "CONNECT 000001"),
        Broadcast(logic.watchers(wire.DRAFT_1, "000001"), "CONNECT 000001"),
    ]


def test_a_local_sender_going_live_tells_watchers_at_once():
    c = clicker(node="me")
    r = conn(c, "r")
    s = conn(c, "s")
    reg = c.register(s, Register(""))
    c.listen(r, Listen((reg.device_id,), wire.DRAFT_2))
    assert c.registered(s, reg) == [
        Send(s, f"REGISTERED {reg.device_id} {reg.secret}"),
        Publish(logic.CHANNEL, ["up", reg.device_id, "me"]),
        Broadcast(logic.watchers(wire.DRAFT_2, reg.device_id), f"CONNECT {reg.device_id}"),
    ]


def test_alone_a_relay_is_a_broadcast_to_the_watchers_now_and_nothing_when_nobody_watches():
    c = clicker(solo=True)
    s, r = conn(c, "s"), conn(c, "r")
    reg = c.register(s, Register(""))
    c.registered(s, reg)
    assert c.score(s, Score("1", "10", "7")) == (Send(s, "SCORED 1 10"),)  # nobody watches it
    c.listen(r, Listen((reg.device_id,), wire.DRAFT_1))
    assert c.score(s, Score("2", "11", "8")) == (
        Send(s, "SCORED 2 11"), Broadcast(logic.watchers(wire.DRAFT_1, reg.device_id), f"SCORE 11 {reg.device_id} 8"),
    )
    assert c.score(s, Score("2", "11", "8")) == (Send(s, "SCORED 2 11"),)  # a retry: acknowledged, not relayed


class ReferenceRetries:
    """The draft-2 rule with Python ints, as the spec words it: a repeat is an msgId seen with the same
    timestamp and score since that id's msgId last went down; only the last `window` msgIds are kept."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.seen: dict[int, tuple[str, str]] = {}
        self.order: list[int] = []
        self.last: int | None = None

    def is_repeat(self, msg_id: int, body: tuple[str, str]) -> bool:
        known = self.seen.get(msg_id)
        if known == body:
            return True
        if known is not None or (self.last is not None and msg_id < self.last):
            self.seen, self.order = {}, []
        self.last = msg_id
        self.seen[msg_id] = body
        self.order.append(msg_id)
        if len(self.order) > self.window:
            self.seen.pop(self.order.pop(0), None)
        return False


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(-12, 12) | st.integers(10**20 - 3, 10**20 + 3), st.sampled_from("ab")),
                max_size=120))
def test_retry_filter_agrees_with_integer_reference_for_any_msgids(steps):
    """Negative msgIds, msgIds of different lengths and past 2**64 compare as numbers."""
    f = RetryFilter(window=8)
    ref = ReferenceRetries(window=8)
    for msg_id, body in steps:
        score = Score(str(msg_id), body, "1")
        assert f.is_repeat("dev", score) == ref.is_repeat(msg_id, (body, "1")), (msg_id, body)


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["subscribe", "listen", "close"]), st.integers(0, 3),
                          st.sets(st.sampled_from([0, 1, 2]))), max_size=40))
def test_watched_counts_the_dialect_groups_with_watchers(actions):
    """`watched` (one lookup per SCORE) always matches the groups; an unwatched id's SCORE builds no relay."""
    c = clicker(solo=True)
    sender = conn(c)
    reg = c.register(sender, Register(""))
    c.registered(sender, reg)
    names = [reg.device_id, "900002", "900003"]
    receivers = [conn(c) for _ in range(4)]
    open_ = set(range(4))
    for action, k, ids in actions:
        if k not in open_:
            continue
        if action == "close":
            c.closed(receivers[k])
            open_.discard(k)
            continue
        dialect = wire.DRAFT_2 if action == "subscribe" else wire.DRAFT_1
        c.listen(receivers[k], Listen(tuple(names[i] for i in sorted(ids)), dialect))
        expected: dict[str, int] = {}
        for (_, device_id), members in c.groups.items():
            assert members
            expected[device_id] = expected.get(device_id, 0) + 1
        assert c.watched == expected
    for n, msg in enumerate(["1", "2"]):  # the first SCORE with its state, the next after the last change
        effects = c.score(sender, Score(msg, str(n), "3"))
        assert [type(e) for e in effects] == [Send] + [Broadcast] * c.watched.get(reg.device_id, 0)
        assert {e.group for e in effects[1:]} == {g for g in c.groups if g[1] == reg.device_id}

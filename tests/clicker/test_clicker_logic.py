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
    Session,
)
from freescore.clicker.wire import Listen, Register, Score

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def clicker(**kw):
    return Clicker(Registry(rng=random.Random(1)), **kw)


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


def test_version_changes_only_on_new_registrations():
    reg = Registry()
    r = reg.register("")
    v = reg.version
    reg.register(r.secret)
    assert reg.version == v


def test_roles_are_fixed():
    c = clicker()
    sender = Session(key="s")
    reg = c.register(sender, Register(""))
    assert reg is not None and sender.role == logic.SENDER
    assert c.register(sender, Register("")) is None
    assert c.listen(sender, Listen(("x",), wire.DRAFT_2)) is None
    receiver = Session(key="r")
    assert c.listen(receiver, Listen((), wire.DRAFT_2)) == ["CONNECT"]
    assert c.register(receiver, Register("")) is None
    assert len(c.registry) == 1


def test_max_devices_refuses_new_ids_but_known_secrets_still_register():
    c = clicker(max_devices=3)
    made = [c.register(Session(), Register("")) for _ in range(3)]
    assert all(r is not None and not isinstance(r, Refused) and r.created for r in made)
    for secret in ("", "not-a-known-secret"):
        late = Session()
        assert c.register(late, Register(secret)) is Refused.FULL
        assert late.role is None and late.device_id is None  # ignored: nothing about it changed
    assert len(c.registry) == 3
    version = c.registry.version
    again = Session()
    known = c.register(again, Register(made[1].secret))
    assert known == logic.Registration(made[1].device_id, made[1].secret, False)
    assert again.role == logic.SENDER and c.registry.version == version


def test_max_devices_counts_ids_loaded_from_disk():
    full = Registry()
    for _ in range(5):
        full.register("")
    c = Clicker(Registry.load(full.dump()), max_devices=5)
    assert c.register(Session(), Register("")) is Refused.FULL
    assert Clicker(Registry.load(full.dump()), max_devices=6).register(Session(), Register("")).created


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
    first = c.register(Session(), Register(""), "10.0.0.1", 0.0)
    c.register(Session(), Register("unknown"), "10.0.0.1", 0.0)
    late = Session()
    assert c.register(late, Register(""), "10.0.0.1", 1.0) is Refused.RATE
    assert late.role is None and len(c.registry) == 2
    for _ in range(5):  # a known secret costs nothing from the budget
        assert c.register(Session(), Register(first.secret), "10.0.0.1", 1.0).device_id == first.device_id
    assert c.register(Session(), Register(""), "10.0.0.2", 1.0).created
    assert c.register(late, Register(""), "10.0.0.1", 7.0).created and late.role == logic.SENDER


def test_full_registry_does_not_spend_the_budget():
    c = clicker(max_devices=1, budget=RegisterBudget(per_minute=1, burst=1))
    c.register(Session(), Register(""), "10.0.0.9", 0.0)
    assert c.register(Session(), Register(""), "10.0.0.1", 0.0) is Refused.FULL
    c.max_devices = 2
    assert c.register(Session(), Register(""), "10.0.0.1", 0.0).created


def test_score_replies_always_relays_only_for_live_senders():
    c = clicker()
    nobody = Session()
    assert c.score(nobody, Score("1", "2", "3")).reply == "SCORED 1 2"
    assert not c.score(nobody, Score("1", "2", "3")).relay
    sender = Session()
    c.register(sender, Register(""))
    assert not c.score(sender, Score("1", "2", "3")).relay  # REGISTERED not out yet
    c.sender_live(sender)
    assert c.score(sender, Score("2", "2", "3")).relay
    receiver = Session()
    c.listen(receiver, Listen((sender.device_id,), wire.DRAFT_1))
    out = c.score(receiver, Score(None, "5", "6"))
    assert out.reply == "SCORED 5" and not out.relay


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
    assert all(len(seen.msgs) <= 8 and len(seen.msg_order) <= 8 for seen in f._ids.values())


def test_listen_replaces_set_and_dialect():
    c = clicker()
    r = Session(key="r")
    c.listen(r, Listen(("000001", "000002"), wire.DRAFT_2))
    assert c.receivers("000001") == (set(), {"r"})
    c.listen(r, Listen(("000002",), wire.DRAFT_1))
    assert c.receivers("000001") == (set(), set())
    assert c.receivers("000002") == ({"r"}, set())
    c.closed(r)
    assert c.receivers("000002") == (set(), set())
    assert not c.draft1 and not c.draft2


def test_connect_reply_lists_connected_in_request_order():
    c = clicker()
    c.device_up("654321", "n1")
    c.device_up("000007", "n1")
    r = Session(key="r")
    assert c.listen(r, Listen(("123456", "000007", "654321"), wire.DRAFT_2)) == ["CONNECT 000007 654321"]
    assert c.listen(r, Listen(("123456",), wire.DRAFT_2)) == ["CONNECT"]


def test_local_sender_counts():
    c = clicker()
    a, b = Session(), Session()
    reg = c.register(a, Register(""))
    c.register(b, Register(reg.secret))
    assert b.device_id == a.device_id
    assert c.sender_live(a) is True
    assert c.sender_live(b) is False
    assert c.closed(a) is False
    assert c.closed(b) is True
    assert c.closed(b) is False  # closing twice changes nothing
    assert c.local_senders == {}


def test_closing_a_sender_before_registered_went_out_is_silent():
    c = clicker()
    a = Session()
    c.register(a, Register(""))
    assert c.closed(a) is False


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
    assert c.reconcile(believed, {("000003", "alive")}) == ["000002"]
    assert c.present == {"000001": {"me"}, "000003": {"alive"}, "000004": {"dead"}}

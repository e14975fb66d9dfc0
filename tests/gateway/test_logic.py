"""Gateway rules with time passed in: records, timers, backlog, close-hook retries."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.effects import Arm, Close, Send
from freescore.gateway import logic, wire
from freescore.wireformat import CloseCode


def test_ids_are_uuid4_and_unique():
    ids = {logic.new_connection_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i) for i in ids)


def test_record_touch():
    r = logic.ConnectionRecord("id", "1.2.3.4", "ua", connected_at=100.0)
    assert r.last_active_at == 100.0
    r.touch(150.0)
    assert r.last_active_at == 150.0


def test_idle_timer():
    t = logic.Timers(idle=10, max_duration=0)
    r = logic.ConnectionRecord("id", "", "", connected_at=100.0)
    assert t.expiry(r, 109.9) is None
    assert t.next_check(r) == 110.0
    r.touch(105)
    assert t.expiry(r, 110) is None
    assert t.next_check(r) == 115.0
    assert t.expiry(r, 115) == Close("id", CloseCode.GOING_AWAY, "Idle timeout")


def test_max_duration_wins_over_activity():
    t = logic.Timers(idle=10, max_duration=30)
    r = logic.ConnectionRecord("id", "", "", connected_at=0.0)
    for now in range(0, 30, 5):
        r.touch(now)
        assert t.expiry(r, now) is None
    assert t.expiry(r, 30) == Close("id", CloseCode.GOING_AWAY, "Max connection duration")


def test_timers_off():
    t = logic.Timers(idle=0, max_duration=0)
    r = logic.ConnectionRecord("id", "", "", connected_at=0.0)
    assert t.expiry(r, 1e9) is None
    assert t.next_check(r) is None


def test_backlog_one_at_a_time_in_order():
    b = logic.Backlog()
    for i in range(3):
        assert b.add(logic.Hook(b"m%d" % i, False))
    first = b.next()
    assert first.payload == b"m0"
    assert b.next() is None  # one in flight
    b.done()
    assert b.next().payload == b"m1"
    b.done()
    assert b.next().payload == b"m2"
    assert not b.drained()
    b.done()
    assert b.drained()


def test_backlog_limits():
    b = logic.Backlog(max_messages=2, max_bytes=10)
    assert b.add(logic.Hook(b"12345", False))
    assert b.add(logic.Hook(b"12345", False))
    assert not b.add(logic.Hook(b"", False))
    b.next()
    assert not b.add(logic.Hook(b"123456", False))  # 5 + 6 bytes > 10
    assert b.add(logic.Hook(b"12345", False))


def test_backlog_holds_a_largest_message():
    assert logic.Backlog.holding(1024).max_bytes == logic.BACKLOG_BYTES
    big = logic.BACKLOG_BYTES + 1
    b = logic.Backlog.holding(big)
    assert b.add(logic.Hook(b"x" * big, False))


def test_shared_backlog_bounds_all_connections_together():
    shared = logic.SharedBacklog(limit=10)
    a, b = logic.Backlog.holding(4, shared), logic.Backlog.holding(4, shared)
    assert a.add(logic.Hook(b"1234", False)) and b.add(logic.Hook(b"1234", False))
    assert shared.total == 8
    assert not b.add(logic.Hook(b"123", False))  # 8 + 3 > 10, though b alone holds 4
    assert a.add(logic.Hook(b"12", False)) and shared.total == 10
    assert a.next().payload == b"1234" and shared.total == 10  # in flight still counts
    a.done()
    assert shared.total == 6
    assert b.add(logic.Hook(b"123", False)) and shared.total == 9


def test_shared_backlog_off():
    shared = logic.SharedBacklog(limit=0)
    b = logic.Backlog.holding(1, shared)
    assert all(b.add(logic.Hook(b"x" * 1000, False)) for _ in range(100))
    assert shared.total == 100000


def test_a_message_over_the_shared_bound_closes_1013_once_as_over_its_own():
    shared = logic.SharedBacklog(limit=3)
    r = logic.ConnectionRecord("id", "", "", connected_at=0.0)
    b = logic.Backlog.holding(3, shared)
    assert logic.message_in(r, b, logic.Hook(b"ab", False), 1.0) == []
    assert logic.message_in(r, b, logic.Hook(b"cd", False), 2.0) == [
        Close("id", CloseCode.TRY_AGAIN_LATER, "Backend too slow")]
    assert logic.message_in(r, b, logic.Hook(b"e", False), 3.0) == [] and shared.total == 2 and b.refused


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["add", "next", "done"]), st.integers(0, 40)),
                max_size=200), st.integers(0, 100))
def test_shared_total_is_what_waits_and_returns_to_zero(steps, limit):
    """Whatever the order of adds, sends and answers: the total is the bytes queued or in flight,
    never over the limit, and 0 once every connection's PUTs are over."""
    shared = logic.SharedBacklog(limit=limit)
    backlogs = [logic.Backlog(max_messages=5, max_bytes=60, shared=shared) for _ in range(4)]
    for which, op, size in steps:
        b = backlogs[which]
        if op == "add":
            b.add(logic.Hook(b"x" * size, False))
        elif op == "next":
            b.next()
        elif b.in_flight:
            b.done()
        assert shared.total == sum(x.queued_bytes + x.in_flight_bytes for x in backlogs)
        assert not limit or shared.total <= limit
    for b in backlogs:
        while not b.drained():
            if b.next() is None:
                b.done()
    assert shared.total == 0


def test_close_retry_schedule():
    delays = (1.0, 2.0)
    assert logic.close_retry_delay(1, None, delays) == 1.0
    assert logic.close_retry_delay(2, 503, delays) == 2.0
    assert logic.close_retry_delay(3, 503, delays) is None
    assert logic.close_retry_delay(1, 404, delays) is None
    assert logic.close_retry_delay(1, 200, delays) is None


def test_timer_check_arms_the_next_check_until_one_is_due():
    t = logic.Timers(idle=10, max_duration=30)
    r = logic.ConnectionRecord("id", "", "", connected_at=0.0)
    assert t.check(r, 0) == [Arm("id", 10.0)]
    r.touch(8)
    assert t.check(r, 10) == [Arm("id", 8.0)]
    assert t.check(r, 18) == [Close("id", CloseCode.GOING_AWAY, "Idle timeout")]
    assert logic.Timers(idle=0, max_duration=0).check(r, 1e9) == []


def test_a_full_backlog_closes_1013_once_and_takes_nothing_more():
    r = logic.ConnectionRecord("id", "", "", connected_at=0.0)
    b = logic.Backlog(max_messages=1)
    assert logic.message_in(r, b, logic.Hook(b"a", False), 1.0) == [] and r.last_active_at == 1.0
    assert logic.message_in(r, b, logic.Hook(b"b", False), 2.0) == [
        Close("id", CloseCode.TRY_AGAIN_LATER, "Backend too slow")]
    assert logic.message_in(r, b, logic.Hook(b"c", False), 3.0) == [] and len(b.queue) == 1


def test_push_commands_answer_and_reach_the_connection_as_effects():
    r = logic.ConnectionRecord("id", "192.0.2.1", "ua", connected_at=0.0)
    send = wire.PushSend(b"hi", False)
    assert logic.push(r, send, 5.0, lambda: 0, 10) == (200, wire.OK_BODY, [Send("id", send)])
    assert r.last_active_at == 5.0
    status, body, fx = logic.push(r, wire.PushInfo(), 6.0, lambda: 0, 10)
    assert status == 200 and fx == [] and b'"sourceIp":"192.0.2.1"' in body
    assert logic.push(r, wire.PushClose(), 7.0, lambda: 0, 10) == (204, b"", [Close("id", CloseCode.NORMAL)])
    with pytest.raises(wire.PushError) as e:
        logic.push(r, send, 8.0, lambda: 11, 10)
    assert e.value.status == 429 and r.last_active_at == 5.0

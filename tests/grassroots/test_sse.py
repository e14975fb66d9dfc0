"""The SSE fan-out on its own: one event per distinct state, a bounded replay buffer, heartbeats."""

from __future__ import annotations

import collections

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from freescore.grassroots.sse import RingEvents, RingStream, stale_rings


class Stream:
    """What RingEvents writes to: a Twisted request's `write` and `finish`."""

    def __init__(self):
        self.data = b""
        self.finished = False

    def write(self, data):
        self.data += data

    def finish(self):
        self.finished = True

    def ids(self):
        return [int(line[4:]) for line in self.data.decode().split("\r\n") if line.startswith("id: ")]

    def datas(self):
        return [line[6:] for line in self.data.decode().split("\r\n") if line.startswith("data: ")]


def test_each_state_once_bounded_replay_and_heartbeats():
    clock = Clock()
    state = {"v": "1"}
    events = RingEvents(clock, lambda key: state["v"], replay=2, heartbeat=5.0)
    events.start()
    a = Stream()
    events.subscribe("r1", a, None)
    assert a.datas() == ["1"]
    for v in ("2", "2", "3", "4"):
        state["v"] = v
        events.changed("r1")
    assert a.datas() == ["1", "2", "3", "4"]  # "2" twice is one state: one event
    ids = a.ids()
    assert ids == sorted(set(ids))
    b = Stream()
    events.subscribe("r1", b, ids[2])  # its id is still in the buffer: only what came after
    assert b.datas() == ["4"]
    c = Stream()
    events.subscribe("r1", c, ids[0])  # evicted (replay = 2): the current state
    assert c.datas() == ["4"] and c.ids() == [ids[3]]
    d = Stream()
    events.subscribe("r1", d, ids[3])  # up to date: a comment, no event
    assert d.datas() == [] and d.data.startswith(b":")
    events.unsubscribe("r1", a)
    before = a.data
    state["v"] = "5"
    clock.advance(5.0)  # the beat re-reads the ring: a change another program made is streamed
    assert a.data == before
    assert b.datas() == ["4", "5"] and b.data.endswith(b": heartbeat\r\n\r\n")
    assert events.count() == 3
    events.stop()
    assert b.finished and c.finished and d.finished


def test_a_ring_nobody_watches_is_not_computed():
    calls = []
    events = RingEvents(Clock(), lambda key: calls.append(key) or "x", replay=4, heartbeat=0.0)
    events.changed("r2")
    assert calls == []
    s = Stream()
    events.subscribe("r2", s, None)
    assert calls == ["r2"] and s.datas() == ["x"]


def test_a_stream_with_too_much_unsent_is_dropped_before_the_next_write():
    state = {"v": "1"}
    dropped = []
    events = RingEvents(Clock(), lambda key: state["v"], replay=4, heartbeat=0.0, max_unsent=100,
                        unsent=lambda s: s.unsent, drop=dropped.append)
    slow, fast = Stream(), Stream()
    slow.unsent = fast.unsent = 0
    events.subscribe("r1", slow, None)
    events.subscribe("r1", fast, None)
    slow.unsent = 100  # at the bound: still served
    state["v"] = "2"
    events.changed("r1")
    assert slow.datas() == ["1", "2"] and dropped == []
    slow.unsent = 101  # over it: dropped, nothing more written to it
    state["v"] = "3"
    events.changed("r1")
    assert slow.datas() == ["1", "2"] and dropped == [slow] and fast.datas() == ["1", "2", "3"]
    assert events.count() == 1


def test_stale_rings_are_those_without_a_stream_for_keep_seconds():
    def ring(streams, idle_since):
        return RingStream(collections.deque(), streams=streams, idle_since=idle_since)

    rings = {"watched": ring(["s"], 0.0), "left long ago": ring([], 10.0), "just left": ring([], 95.0),
             "at the bound": ring([], 40.0)}
    assert sorted(stale_rings(rings, now=100.0, keep=60.0)) == ["at the bound", "left long ago"]
    assert stale_rings({}, now=100.0, keep=60.0) == []


def test_a_ring_buffer_outlives_its_last_stream_by_keep_then_goes():
    clock = Clock()
    state = {"v": "1"}
    events = RingEvents(clock, lambda key: state["v"], replay=4, heartbeat=5.0, keep=20.0)
    events.start()
    for key in ("db/1", "db/2", "made-up/1"):
        events.changed(key)  # a change nobody streams (any <db> with create_tournaments): no buffer
    assert events.rings == {}
    a, b = Stream(), Stream()
    events.subscribe("db/1", a, None)
    events.subscribe("db/2", b, None)
    events.unsubscribe("db/1", a)
    clock.advance(15.0)
    reconnect = Stream()
    events.subscribe("db/1", reconnect, a.ids()[-1])  # back within `keep`: caught up from the buffer
    assert reconnect.datas() == [] and set(events.rings) == {"db/1", "db/2"}
    events.unsubscribe("db/1", reconnect)
    clock.advance(15.0)
    assert set(events.rings) == {"db/1", "db/2"}  # 15 s < keep
    clock.advance(5.0)
    assert set(events.rings) == {"db/2"}  # the beat at 20 s dropped it; the watched ring stays
    late = Stream()
    events.subscribe("db/1", late, a.ids()[-1])  # its buffer is gone: the current state, with a newer id
    assert late.datas() == ["1"] and late.ids()[0] > a.ids()[-1]
    events.stop()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sub", "unsub", "tick"]), st.integers(0, 3)), max_size=40))
def test_buffers_exist_only_for_watched_or_recently_left_rings(steps):
    clock = Clock()
    events = RingEvents(clock, lambda key: "x", replay=2, heartbeat=5.0, keep=10.0)
    events.start()
    open_streams: dict[int, list[Stream]] = {k: [] for k in range(4)}
    left: dict[int, float] = {}
    for op, k in steps:
        if op == "sub":
            s = Stream()
            events.subscribe(k, s, None)
            open_streams[k].append(s)
        elif op == "unsub" and open_streams[k]:
            events.unsubscribe(k, open_streams[k].pop())
            if not open_streams[k]:
                left[k] = clock.seconds()
        elif op == "tick":
            clock.advance(5.0)
        for key in range(4):
            if open_streams[key]:
                assert key in events.rings
            elif key in left and clock.seconds() - left[key] >= 15.0:  # keep, then at most one beat
                assert key not in events.rings
    events.stop()

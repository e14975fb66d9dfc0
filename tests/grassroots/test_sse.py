"""The SSE fan-out on its own: one event per distinct state, a bounded replay buffer, heartbeats."""

from __future__ import annotations

from twisted.internet.task import Clock

from freescore.grassroots.sse import RingEvents


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

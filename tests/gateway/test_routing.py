"""Push routing between nodes: commands survive the hub's JSON round trip; every call
sent to another node ends exactly once (answer, timeout or stop) and leaves no timer behind;
errors are `PushError`s, also across the hub."""

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import task

from freescore.gateway import wire
from freescore.gateway.routing import NODE_CALL_TIMEOUT, SPACE, Router, decode_command, encode_command
from freescore.hub.memory import MemoryHub


@given(st.one_of(
    st.builds(wire.PushSend, st.binary(max_size=64), st.just(True)),
    st.builds(wire.PushSend, st.text(max_size=64).map(lambda t: t.encode("utf-8")), st.just(False)),
    st.just(wire.PushInfo()),
    st.just(wire.PushClose()),
))
def test_commands_round_trip_through_json(command):
    payload = json.loads(json.dumps(encode_command(command)))
    assert decode_command(payload) == command


# -- the Router under a task.Clock: two "nodes" sharing one MemoryHub ------------------

class HeldConnection:
    """Stands in for a connection held by the other node: a GET describes it, a send finds its buffer full."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id

    def execute(self, command: wire.PushCommand) -> tuple[int, bytes]:
        if isinstance(command, wire.PushSend):
            raise wire.buffer_full()
        return 200, wire.encode({"connectionId": self.conn_id})


def two_nodes(clock: task.Clock):
    hub = MemoryHub(0, node="a")
    a = Router(hub, clock, {}, node="a")
    b_local: dict = {}
    b = Router(hub, clock, b_local, node="b")
    a.start()
    b.start()
    return hub, a, b, b_local


def hold_on_b(hub, b_local, conn_id):
    b_local[conn_id] = HeldConnection(conn_id)
    hub.join(SPACE, conn_id, {"node": "b"})


def results(d):
    """What the call fired with: the reply, or the PushError's (status, code, message, AWS type)."""
    got = []
    d.addCallbacks(got.append, lambda f: got.append(pushed(f.trap(wire.PushError) and f.value)))
    return got


def pushed(e: wire.PushError) -> tuple[int, str, str, str | None]:
    return e.status, e.code, e.message, e.error_type


def test_answered_calls_cancel_their_timers():
    clock = task.Clock()
    hub, a, b, b_local = two_nodes(clock)
    for i in range(200):
        hold_on_b(hub, b_local, f"c{i}")
    answers = [results(a.route(f"c{i}", wire.PushInfo())) for i in range(200)]
    assert answers == [[(200, wire.encode({"connectionId": f"c{i}"}))] for i in range(200)]
    assert a.pending == 0
    assert clock.getDelayedCalls() == [], "an answered call left its timeout timer running"


def test_a_node_that_does_not_answer_times_out_once():
    clock = task.Clock()
    hub, a, b, b_local = two_nodes(clock)
    hub.join(SPACE, "lost", {"node": "gone"})  # its node crashed; presence has not expired yet
    got = results(a.route("lost", wire.PushInfo()))
    assert got == [] and a.pending == 1
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(NODE_CALL_TIMEOUT - 0.001)
    assert got == []
    clock.advance(0.001)
    assert got == [(504, "NODE_TIMEOUT", "node gone did not answer", None)]
    assert a.pending == 0 and clock.getDelayedCalls() == []
    # a late answer (same request id) is ignored
    hub.publish("gateway.reply.a", {"rid": 1, "status": 200, "body": "{}"})
    assert len(got) == 1


def test_answers_cancel_timers_when_delivery_is_asynchronous():
    """The Redis hub answers later, not inside publish(): the timer waits until then, no longer."""
    clock = task.Clock()
    hub = MemoryHub(0, node="a")
    a = Router(hub, clock, {})
    a.start()
    hub.join(SPACE, "x", {"node": "b"})
    commands = []
    hub.subscribe("gateway.node.b", commands.append)
    got = [results(a.route("x", wire.PushSend(b"hi", False))) for _ in range(3)]
    assert a.pending == 3 and len(clock.getDelayedCalls()) == 3
    assert [decode_command(m.payload) for m in commands] == [wire.PushSend(b"hi", False)] * 3
    clock.advance(1)
    for m in commands:
        hub.publish(m.payload["reply"], {"rid": m.payload["rid"], "status": 200, "body": '{"code":"OK"}'})
    assert got == [[(200, wire.OK_BODY)]] * 3
    assert a.pending == 0 and clock.getDelayedCalls() == []


def test_unknown_and_own_ids_answer_410_without_a_call():
    clock = task.Clock()
    hub, a, b, b_local = two_nodes(clock)
    hub.join(SPACE, "stale", {"node": "a"})  # says it is here, but it is not in a's connections
    gone = pushed(wire.gone())
    assert gone[:3] == (410, "NOT_FOUND", wire.GONE_MESSAGE) and gone[3] == "GoneException"
    assert results(a.route("nobody", wire.PushInfo())) == [gone]
    assert results(a.route("stale", wire.PushInfo())) == [gone]
    hub.join(SPACE, "left-b", {"node": "b"})  # b no longer holds it: b answers 410
    assert results(a.route("left-b", wire.PushClose())) == [gone]
    assert a.pending == 0 and clock.getDelayedCalls() == []


def test_an_error_on_the_other_node_crosses_the_hub_whole():
    clock = task.Clock()
    hub, a, b, b_local = two_nodes(clock)
    hold_on_b(hub, b_local, "full")
    assert results(a.route("full", wire.PushSend(b"x", False))) == [pushed(wire.buffer_full())]
    assert a.pending == 0 and clock.getDelayedCalls() == []


def test_an_id_this_node_lacks_is_503_while_the_hub_is_down():
    clock = task.Clock()
    hub, a, b, b_local = two_nodes(clock)
    hub.is_up = lambda: False  # only this node's view: another node may hold it
    assert results(a.route("nobody", wire.PushInfo())) == [
        (503, "HUB_DOWN", "the hub is unreachable, so the node holding it is unknown", None)]


def test_stop_answers_waiting_calls_and_cancels_their_timers():
    clock = task.Clock()
    hub, a, b, b_local = two_nodes(clock)
    hub.join(SPACE, "lost", {"node": "gone"})
    got = results(a.route("lost", wire.PushInfo()))
    a.stop()
    assert got == [(503, "SHUTTING_DOWN", "the node is stopping", None)]
    assert a.pending == 0 and clock.getDelayedCalls() == []

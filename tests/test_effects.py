"""The effect vocabulary: helpers append in order, the apply loop dispatches each, timers re-arm by key."""

from __future__ import annotations

from twisted.internet.task import Clock

from freescore.effects import (
    Arm,
    Broadcast,
    Cancel,
    Close,
    Connections,
    ConnId,
    Effects,
    Publish,
    Send,
    Timers,
    apply_effects,
)
from freescore.wireformat import CloseCode


class Recorder:
    def __init__(self) -> None:
        self.done: list[tuple[str, object]] = []

    def do_send(self, e: Send) -> None:
        self.done.append(("send", e))

    def do_broadcast(self, e: Broadcast) -> None:
        self.done.append(("broadcast", e))

    def do_publish(self, e: Publish) -> None:
        self.done.append(("publish", e))

    def do_close(self, e: Close) -> None:
        self.done.append(("close", e))

    def do_arm(self, e: Arm) -> None:
        self.done.append(("arm", e))

    def do_cancel(self, e: Cancel) -> None:
        self.done.append(("cancel", e))


def test_effects_apply_in_order_to_one_handler_method_each() -> None:
    fx = Effects()
    a = ConnId("c1")
    fx.send(a, "hello")
    fx.broadcast(("db", 1), "all", exclude=a)
    fx.publish("ring", {"n": 1})
    fx.arm("autopilot", 9.0, {"step": "next"})
    fx.cancel("autopilot")
    fx.close(a, CloseCode.POLICY_VIOLATION, "bye")
    rec = Recorder()
    apply_effects(rec, fx)
    assert [kind for kind, _ in rec.done] == ["send", "broadcast", "publish", "arm", "cancel", "close"]
    assert rec.done[1][1] == Broadcast(("db", 1), "all", a)
    assert rec.done[5][1] == Close(a, CloseCode.POLICY_VIOLATION, "bye")


def test_connections_hand_out_distinct_ids_and_forget_removed() -> None:
    conns: Connections[object] = Connections("w")
    x, y = object(), object()
    ix, iy = conns.add(x), conns.add(y)
    assert ix != iy and conns.get(ix) is x and len(conns) == 2
    assert conns.remove(ix) is x and conns.get(ix) is None and ix not in conns
    assert list(conns) == [iy]


def test_timers_rearm_replaces_and_cancel_stops() -> None:
    clock = Clock()
    fired: list[str] = []
    timers = Timers(clock)
    timers.arm("k", 5, lambda: fired.append("first"))
    clock.advance(3)
    timers.arm("k", 5, lambda: fired.append("second"))
    clock.advance(3)
    assert fired == [] and timers.armed("k")
    clock.advance(2)
    assert fired == ["second"] and not timers.armed("k")
    timers.arm("j", 1, lambda: fired.append("never"))
    assert timers.cancel("j") and not timers.cancel("j")
    clock.advance(5)
    assert fired == ["second"]

"""Push routing: carry a push API command out here or on the node holding the connection.

Connections are in the hub's presence (space `gateway`, info `{"node": ...}`).
A command for a connection held by another node goes out on that node's
channel `gateway.node.<node>`; its answer comes back on
`gateway.reply.<this node>`, matched by a request id. Each call waiting for
an answer keeps its timeout timer, cancelled when the answer arrives: at
thousands of pushes a second, timers left to run out would pile up for the
whole timeout.

A call's Deferred fires with the `(status, body)` to answer, or fails with
the `wire.PushError` to answer (410 gone, 429, 503 hub down or node stopping,
504 node timeout); an error crosses the hub as its status, code, message and
AWS error type.

Kept apart from the Twisted service so it runs under a `task.Clock` in tests.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall

from freescore.gateway import wire
from freescore.hub import Hub, HubMessage

SPACE = "gateway"
NODE_CALL_TIMEOUT = 5.0
Reply = tuple[int, bytes]


class Held(Protocol):
    """A connection held by this node, as routing sees it (the adapter's `GatewayProtocol`)."""

    def execute(self, command: wire.PushCommand) -> Reply:
        """Carry out the command; raise `wire.PushError` (410 once it closed, 429)."""


@dataclass
class _Call:
    """A command sent to another node, waiting for its answer."""

    answer: Deferred[Reply]
    timer: IDelayedCall


class Router:
    """Routes push commands; answers other nodes' commands for connections in `local`."""

    def __init__(self, hub: Hub, clock: Any, local: Mapping[str, Held], *, node: str | None = None,
                 timeout: float = NODE_CALL_TIMEOUT) -> None:
        self.hub = hub
        self.clock = clock
        self.local = local
        self.node = hub.node if node is None else node
        self.timeout = timeout
        self._calls: dict[int, _Call] = {}
        self._rids = itertools.count(1)
        self._subs: list[Any] = []

    @property
    def pending(self) -> int:
        """Commands sent to other nodes and not answered yet (each holds one timer)."""
        return len(self._calls)

    def start(self) -> None:
        self._subs = [
            self.hub.subscribe(f"gateway.node.{self.node}", self._on_command),
            self.hub.subscribe(f"gateway.reply.{self.node}", self._on_reply),
        ]

    def stop(self) -> None:
        """Stop listening; calls still waiting get 503 now rather than a timer firing later."""
        for sub in self._subs:
            sub.cancel()
        self._subs = []
        calls, self._calls = self._calls, {}
        for call in calls.values():
            call.timer.cancel()
            call.answer.errback(wire.shutting_down())

    def route(self, conn_id: str, command: wire.PushCommand) -> Deferred[Reply]:
        proto = self.local.get(conn_id)
        if proto is not None:
            try:
                return succeed(proto.execute(command))
            except wire.PushError as e:
                return fail(e)
        d = self.hub.member(SPACE, conn_id)  # one presence entry, not the whole space per push
        d.addCallback(self._route_remote, conn_id, command)
        return d

    def _route_remote(self, info: Any, conn_id: str, command: wire.PushCommand) -> Reply | Deferred[Reply]:
        proto = self.local.get(conn_id)  # it may have connected here meanwhile
        if proto is not None:
            return proto.execute(command)
        node = info.get("node") if isinstance(info, dict) else None
        if not node or node == self.node:
            if not self.hub.is_up():  # only this node's view: another node may hold it
                raise wire.hub_down()
            raise wire.gone()
        rid = next(self._rids)
        answer: Deferred[Reply] = Deferred()
        # Registered before publishing: the memory hub answers inside publish().
        self._calls[rid] = _Call(answer, self.clock.callLater(self.timeout, self._expire, rid, node))
        payload = {"id": conn_id, "rid": rid, "reply": f"gateway.reply.{self.node}", **encode_command(command)}
        self.hub.publish(f"gateway.node.{node}", payload).addErrback(self._unsent, rid)
        return answer

    def _expire(self, rid: int, node: str) -> None:
        call = self._calls.pop(rid, None)
        if call is not None:
            call.answer.errback(wire.node_timeout(node))

    def _unsent(self, failure: Any, rid: int) -> None:
        call = self._calls.pop(rid, None)
        if call is not None:
            call.timer.cancel()
            call.answer.errback(failure)

    def _on_command(self, message: HubMessage) -> None:
        p = message.payload
        proto = self.local.get(p.get("id", ""))
        answer: dict[str, Any] = {"rid": p["rid"]}
        try:
            if proto is None:
                raise wire.gone()
            status, body = proto.execute(decode_command(p))
            answer.update(status=status, body=body.decode("utf-8"))
        except wire.PushError as e:
            answer["error"] = {"status": e.status, "code": e.code, "message": e.message, "type": e.error_type}
        self.hub.publish(p["reply"], answer)

    def _on_reply(self, message: HubMessage) -> None:
        p = message.payload
        call = self._calls.pop(p.get("rid"), None)
        if call is None:
            return
        call.timer.cancel()
        error = p.get("error")
        if isinstance(error, dict):
            call.answer.errback(wire.PushError(int(error["status"]), str(error["code"]), str(error["message"]),
                                               error.get("type")))
        else:
            call.answer.callback((int(p["status"]), str(p.get("body", "")).encode("utf-8")))


def encode_command(command: wire.PushCommand) -> dict[str, Any]:
    """A JSON-safe form of a command, for the hub."""
    if isinstance(command, wire.PushSend):
        if command.binary:
            return {"op": "send", "binary": True, "data": base64.b64encode(command.payload).decode("ascii")}
        return {"op": "send", "binary": False, "data": command.payload.decode("utf-8")}
    if isinstance(command, wire.PushInfo):
        return {"op": "info"}
    return {"op": "close"}


def decode_command(p: dict[str, Any]) -> wire.PushCommand:
    op = p.get("op")
    if op == "send":
        if p.get("binary"):
            return wire.PushSend(base64.b64decode(p["data"]), True)
        return wire.PushSend(str(p["data"]).encode("utf-8"), False)
    if op == "info":
        return wire.PushInfo()
    return wire.PushClose()

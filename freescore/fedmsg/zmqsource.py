"""ZeroMQ in the reactor: SUB sockets reading fedmsg endpoints, a PUB socket for publishes.

pyzmq's `zmq.FD` is edge-triggered, so every wake-up drains the socket until
EAGAIN; a wake-up that stops early (to let the reactor breathe) schedules its
own continuation. Nothing here blocks the reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import zmq
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from zope.interface import implementer

log = Logger(namespace="freescore.fedmsg")

BATCH = 500
BATCH_BYTES = 64 * 1024
"""Messages and bytes read per wake-up before yielding to the reactor, so that
writes to browsers happen between bursts: Twisted writes at most 128 KiB per
connection per reactor turn, so a browser that keeps up never builds a backlog."""


@implementer(IReadDescriptor)
class SocketReader:
    """Feeds every multipart message of a pyzmq socket to `on_message`, from the reactor."""

    def __init__(self, reactor: Any, socket: zmq.Socket, on_message: Callable[[list[bytes]], None]) -> None:
        self.reactor = reactor
        self.socket = socket
        self.on_message = on_message
        self._fd = socket.getsockopt(zmq.FD)
        self._again: Any = None
        self._closed = False

    def start(self) -> None:
        self.reactor.addReader(self)
        self._again = self.reactor.callLater(0, self.doRead)

    def stop(self) -> None:
        self._closed = True
        self.reactor.removeReader(self)
        if self._again is not None and self._again.active():
            self._again.cancel()
        self._again = None

    def fileno(self) -> int:
        return -1 if self._closed else self._fd

    def logPrefix(self) -> str:
        return "fedmsg-zmq"

    def connectionLost(self, reason: Any) -> None:
        if not self._closed:
            log.error("fedmsg: ZeroMQ reader lost: {why}", why=reason.getErrorMessage())
            self.stop()

    def doRead(self) -> None:
        if self._again is not None and self._again.active():
            self._again.cancel()
        self._again = None
        size = 0
        for _ in range(BATCH):
            if self._closed:
                return
            try:
                parts = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                log.error("fedmsg: ZeroMQ receive failed: {why}", why=e)
                return
            try:
                self.on_message(parts)
            except Exception:
                log.failure("fedmsg: handling a ZeroMQ message failed")
            size += sum(len(p) for p in parts)
            if size >= BATCH_BYTES:
                break
        self._again = self.reactor.callLater(0, self.doRead)


_EVENTS = {
    zmq.EVENT_CONNECTED: "connected",
    zmq.EVENT_ACCEPTED: "connected",
    zmq.EVENT_DISCONNECTED: "connecting",
    zmq.EVENT_CONNECT_RETRIED: "connecting",
    zmq.EVENT_CLOSED: "connecting",
}


class Subscriber:
    """One SUB socket on one endpoint, subscribed to everything (matching is done in Python).

    Subscribing to "" once keeps no per-browser filters on the socket, so
    nothing piles up as browsers come and go (upstream's filter leak).
    """

    def __init__(
        self,
        reactor: Any,
        context: zmq.Context,
        endpoint: str,
        method: str,
        options: dict[int, int],
        on_message: Callable[[str, list[bytes]], None],
        on_state: Callable[[str, str], None],
    ) -> None:
        self.endpoint = endpoint
        self.state = "connecting"
        self._on_state = on_state
        self.socket = context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        for option, value in options.items():
            self.socket.setsockopt(option, value)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        monitor = self.socket.get_monitor_socket(zmq.EVENT_ALL)
        self._monitor = SocketReader(reactor, monitor, self._monitor_event)
        self._reader = SocketReader(reactor, self.socket, lambda parts: on_message(endpoint, parts))
        if method == "bind":
            self.socket.bind(endpoint)
        else:
            self.socket.connect(endpoint)

    def start(self) -> None:
        self._monitor.start()
        self._reader.start()

    def _monitor_event(self, parts: list[bytes]) -> None:
        try:
            event = recv_monitor_message_from(parts)
        except Exception:
            return
        state = _EVENTS.get(event)
        if state is not None and state != self.state:
            self.state = state
            self._on_state(self.endpoint, state)

    def stop(self) -> None:
        self._reader.stop()
        self._monitor.stop()
        try:
            self.socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.socket.close(0)
        self.socket.close(0)


def recv_monitor_message_from(parts: list[bytes]) -> int:
    """The event number of a monitor message (first frame: 16-bit event, 32-bit value)."""
    return int.from_bytes(parts[0][:2], "little")


class Publisher:
    """A PUB socket bound to `publish_endpoints`: HTTP and browser publishes also go to ZeroMQ."""

    def __init__(self, context: zmq.Context, endpoints: tuple[str, ...], high_water_mark: int) -> None:
        self.socket = context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, high_water_mark)
        for endpoint in endpoints:
            self.socket.bind(endpoint)

    def send(self, topic: str, body_text: str) -> None:
        try:
            self.socket.send_multipart([topic.encode("utf-8"), body_text.encode("utf-8")], zmq.NOBLOCK)
        except zmq.ZMQError as e:
            log.warn("fedmsg: ZeroMQ publish of {topic} dropped: {why}", topic=topic, why=e)

    def close(self) -> None:
        self.socket.close(0)


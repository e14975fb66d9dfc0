"""The shared Autobahn base every WebSocket protocol in freescore uses.

It owns what each protocol would otherwise get subtly wrong: explicit limits,
a keepalive that counts any pong as alive, no Host-port check, one close path
for every RFC 6455 code, connection logging and metrics, and the direct write
and per-turn batch the broadcaster (`freescore.broadcast`) relies on. The
factory hands every connection its protocol service as `self.service`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet import tcp
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.web.resource import IResource
from twisted.web.server import Request

from freescore.effects import ConnId
from freescore.metrics import ServiceMetrics
from freescore.settings import WebSocketSettings
from freescore.web import answer_error, json_error
from freescore.wireformat import CloseCode, HttpError

log = Logger(namespace="freescore.websocket")

_OPEN = WebSocketServerProtocol.STATE_OPEN
_from_bytes = int.from_bytes
"""Bound once: `int.from_bytes` looked up per frame made a bound method each time (twice per frame)."""
_LOW_BYTES = [(1 << (n << 3)) - 1 for n in range(126)]
"""The mask keeping the low `n` bytes of an int, per payload length: a list index, not two big-int operations."""
EARLY_BYTES_LIMIT = 65536
"""Bytes a client may send while its handshake waits for an answer; more refuse it with 400."""
UPGRADE_REQUIRED = HttpError(426, "this path takes WebSocket connections only", {"upgrade": "websocket"})
UPGRADE_WITH_BODY = HttpError(400, "a WebSocket upgrade request takes no body")


class ConnectionRegistry:
    """Every open WebSocket of the process, so a stop can close them all with 1001."""

    def __init__(self) -> None:
        self.open: set[FreescoreServerProtocol] = set()
        # For freescore.gcpolicy: `epoch` counts collector passes; a connection that closes
        # in a later epoch than it opened was promoted out of the young generation and
        # left its cycles there; `closed` counts those closes since the last full pass.
        self.epoch = 0
        self.closed = 0
        self.on_close: Callable[[], None] | None = None

    def close_all(self, reactor: Any, timeout: float) -> Deferred[Any]:
        """Send 1001 to every connection; fire when all are gone or `timeout` passed."""
        waits = []
        for proto in list(self.open):
            waits.append(proto.going_away())
        if not waits:
            return succeed(None)
        done: Deferred[Any] = DeferredList(waits, consumeErrors=True)
        timer = reactor.callLater(timeout, self._abort_rest)
        done.addBoth(lambda r: (timer.cancel() if timer.active() else None, r)[1])
        return done

    def _abort_rest(self) -> None:
        for proto in list(self.open):
            proto.dropConnection(abort=True)


class FreescoreServerProtocol(WebSocketServerProtocol):
    """Subclass and implement `handshake`, `opened`, `received`, `closed`.

    Autobahn's own callbacks (onConnect, onOpen, onMessage, onClose, onPong)
    are used here for the shared bookkeeping; do not override them. A
    subclass narrows `service` to its protocol service's type.
    """

    factory: "FreescoreServerFactory"
    service: Any = None
    """The protocol service this connection belongs to, handed over by the factory."""
    request: ConnectionRequest | None = None
    gc_epoch = 0
    _keepalive_call: Any = None
    _alive: bool = True
    _counted: bool = False
    origin: str | None = None
    """The raw Origin header (Autobahn never sees it; see WebSocketEndpoint)."""
    _tcp: Any = None
    _transports: tuple[Any, ...] | None = None
    _batch: list[bytes] | None = None
    """Frames queued by the broadcaster for this reactor turn's one write; direct sends queue behind them."""
    _unsent_bound = 1 << 62
    """The broadcaster's running bound of `unsent_bytes()` (`Broadcaster._check`); it starts past any
    limit, so a connection's first buffered write is measured."""
    _small_limit = 125
    _messages_in: Any = None
    _answering = False
    """The request was read and handed to `handshake`; its answer (the 101 or a refusal) is not out yet."""

    # -- hooks for protocols -------------------------------------------------
    def handshake(self, request: ConnectionRequest) -> Any:
        """Accept (return None or a subprotocol) or raise ConnectionDeny."""
        return None

    def opened(self) -> None:
        pass

    def received(self, payload: bytes, is_binary: bool) -> None:
        pass

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        pass

    # -- shared bookkeeping --------------------------------------------------
    def processHandshake(self) -> None:
        """Read the upgrade request once; bytes after it wait, as frames, for the 101.

        Autobahn parses its buffer as a request again whenever bytes arrive while
        a `handshake` waits (the gateway's connect hook): a frame that holds a
        blank line became a second request and a second `handshake`. The client
        should send nothing before the 101; what it does send is kept, up to
        `EARLY_BYTES_LIMIT`.
        """
        if not self._answering:
            super().processHandshake()
        elif len(self.data) > EARLY_BYTES_LIMIT:
            self.failHandshake(f"more than {EARLY_BYTES_LIMIT} bytes sent before the handshake was answered")

    def onConnect(self, request: ConnectionRequest) -> Any:
        self.request = request
        self._answering = True
        if self.origin is not None:
            request.origin = self.origin
            if not origin_allowed(self.origin, self.factory.limits.allowed_origins):
                log.info(
                    "{service}: refusing {peer} on {path}: origin {origin!r} not allowed",
                    service=self.factory.name, peer=self.peer, path=request.path, origin=self.origin,
                )
                raise ConnectionDeny(403, "origin not allowed")
        if self.factory.in_use() >= self.factory.limits.max_connections:
            log.warn(
                "{service}: refusing {peer} on {path}: {limit} connections open",
                service=self.factory.name, peer=self.peer, path=request.path,
                limit=self.factory.limits.max_connections,
            )
            raise ConnectionDeny(503, "too many connections")
        # Handshakes that wait (e.g. on a webhook) count towards the limit too.
        self.factory.pending.add(self)
        return self.handshake(request)

    def onOpen(self) -> None:
        self.factory.pending.discard(self)
        self.factory.track_open(self)
        self._tcp = _direct_socket(self.transport)
        # What `dataReceived` reads per read: the longest payload it takes (126 and 127
        # announce longer ones) and the count it adds to.
        self._small_limit = min(125, self.maxFramePayloadSize or 125, self.maxMessagePayloadSize or 125)
        self._messages_in = self.factory.metrics.messages_in
        # Read per frame and per write: an attribute of the connection itself is a specialized load;
        # the class's default was looked up through the long MRO (Autobahn's classes) every time.
        self._batch = None
        # Real-time frames are small: do not let Nagle hold one back behind an unacknowledged one.
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            try:
                set_nodelay(True)
            except OSError:
                pass
        self._counted = True
        path = self.request.path if self.request else "?"
        log.info("{service}: open {peer} {path}", service=self.factory.name, peer=self.peer, path=path)
        if self.factory.limits.keepalive > 0:
            self._keepalive_call = self.factory.reactor.callLater(self.factory.limits.keepalive, self._keepalive_tick)
        self.opened()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self._alive = True
        self.factory.metrics.messages_in.inc()
        self.received(payload, isBinary)

    def onMessageFrameBegin(self, length: int) -> None:
        """An empty frame counts one byte towards `max_message`: each is kept in the message's
        list of fragments, so an endless stream of them grew the process without bound."""
        if not length:
            self.message_data_total_length += 1
        super().onMessageFrameBegin(length)

    def onPong(self, payload: bytes) -> None:
        # Some devices answer with the literal payload "pong": any pong counts.
        self._alive = True

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self._keepalive_call is not None and self._keepalive_call.active():
            self._keepalive_call.cancel()
        self._keepalive_call = None
        if not self._counted:
            return
        self._counted = False
        self.factory.track_close(self)
        path = self.request.path if self.request else "?"
        log.info(
            "{service}: close {peer} {path} code={code} clean={clean}",
            service=self.factory.name, peer=self.peer, path=path, code=code, clean=wasClean,
        )
        self.closed(wasClean, code, reason)

    def _keepalive_tick(self) -> None:
        self._keepalive_call = None
        if not self._alive:
            log.info(
                "{service}: {peer} answered no ping within {interval}s, dropping",
                service=self.factory.name, peer=self.peer, interval=self.factory.limits.keepalive,
            )
            self.dropConnection(abort=True)
            return
        self._alive = False
        self.sendPing()
        self._keepalive_call = self.factory.reactor.callLater(self.factory.limits.keepalive, self._keepalive_tick)

    def going_away(self) -> Deferred[None]:
        """Close with 1001 and fire when the connection is gone."""
        d: Deferred[None] = Deferred()
        self._gone_waiters = getattr(self, "_gone_waiters", [])
        self._gone_waiters.append(d)
        self.close_with(CloseCode.GOING_AWAY, "Server shutting down")
        return d

    def close_with(self, code: CloseCode | int, reason: str = "") -> None:
        """The one close path: start the closing handshake with any RFC 6455 code.

        Autobahn's public `sendClose` takes only 1000 and 3000-4999 and raises
        on the rest (1001, 1008, 1009, 1013...). The reason is cut to the 123
        bytes a close frame holds, never inside a character. Before the
        handshake finished there is nothing to close: the connection is dropped.
        """
        if self.state == WebSocketServerProtocol.STATE_OPEN:
            reason_utf8 = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
            self.sendCloseFrame(code=int(code), reasonUtf8=reason_utf8, isReply=False)
        elif self.state in (WebSocketServerProtocol.STATE_CONNECTING, WebSocketServerProtocol.STATE_PROXY_CONNECTING):
            self.dropConnection(abort=True)

    def connectionLost(self, reason: Any) -> None:
        self.factory.pending.discard(self)
        super().connectionLost(reason)
        for d in getattr(self, "_gone_waiters", []):
            d.callback(None)
        self._gone_waiters = []
        # Autobahn resolves `is_closed` with the protocol itself, a reference cycle that
        # leaves every closed connection to the cycle collector (docs/runtime.md). Nothing
        # waits on it once the connection is gone.
        self.is_closed = succeed(None)

    # -- Autobahn's hot path without its debug log ----------------------------
    # Autobahn formats (and colours) the arguments of a debug log line on every
    # read and write even with debug logging off: about a third of the CPU of a
    # small message. These two keep its behaviour and skip that line.
    def dataReceived(self, data: bytes) -> None:
        """Deliver the complete, masked, unfragmented text frames under 126 bytes at the front of `data`.

        Most messages of these protocols are such frames (a clicker SCORE is
        about 30 bytes), and Autobahn spends about 15 µs of Python on each
        (frame and message state, a masker and a UTF-8 validator object). The
        rest, from the first frame that is anything else (control frames,
        fragments, longer or partial frames, invalid UTF-8, which Autobahn
        answers with 1007), goes to Autobahn as usual. What `onMessage` does
        per message is done once per read here: the liveness mark and the
        metric (a `Tally`'s count, added to without a call). When the read
        holds more than one frame, the replies to them leave in one write.
        One method, not two: it runs for every read.
        """
        if self.state != _OPEN or self.data or self.current_frame is not None or self.inside_message:
            self._dataReceived(data)  # Autobahn's own path: handshake, partial frames, closing
            return
        n = len(data)
        batch = None
        if self._batch is None and n > 6 + (data[1] & 0x7F if n > 1 else 0):
            self._batch = batch = []  # several frames (or a long one): their replies in one write
        i = 0
        limit = self._small_limit
        received = self.received
        count = 0
        try:
            while n - i >= 6 and data[i] == 0x81 and data[i + 1] & 0x80:
                length = data[i + 1] & 0x7F
                end = i + 6 + length
                if length > limit or end > n:
                    break
                if length:
                    mask = _from_bytes(data[i + 2:i + 6] * ((length + 3) >> 2), "little") & _LOW_BYTES[length]
                    payload = (_from_bytes(data[i + 6:end], "little") ^ mask).to_bytes(length, "little")
                    if not payload.isascii():  # ASCII is valid UTF-8: decode only to validate the rest
                        try:
                            payload.decode("utf-8")
                        except UnicodeDecodeError:
                            break
                else:
                    payload = b""
                i = end
                count += 1
                received(payload, False)
                if self.state != _OPEN:
                    break
        finally:
            if count:
                self._alive = True
                self._messages_in.pending += count
                self.trafficStats.incomingOctetsWireLevel += i
            if batch is not None:
                self._batch = None
                if batch:
                    self.write_now(batch[0] if len(batch) == 1 else b"".join(batch))
        if i < n:
            self._dataReceived(data[i:] if i else data)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        batch = self._batch
        if batch is not None and not (chopsize or sync):
            batch.append(data)  # behind the frames the broadcaster queued: order kept
            return
        if chopsize or sync or self.send_queue:
            super().sendData(data, sync, chopsize)
            return
        self.write_now(data)
        if self.state == WebSocketServerProtocol.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        else:
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)
        if self.logOctets:
            self.logTxOctets(data, False)

    def write_now(self, data: bytes) -> bool:
        """Hand bytes to the kernel at once when nothing is queued on a plain TCP connection.

        True when the kernel took all of it; False when some is left buffered in
        the process (TLS, a full socket buffer, data already queued, Autobahn's
        own queue of chopped or synced writes, which the bytes then join, in order).

        Twisted's `transport.write` registers the socket for writing and sends on
        a later reactor turn: two epoll_ctl calls and a turn per frame, about a
        fifth of a small message's CPU. Whatever the kernel does not take, TLS,
        and anything already queued go through the transport, which keeps order.
        """
        if self.send_queue:  # Autobahn's own queue: behind it, in order
            WebSocketServerProtocol.sendData(self, data)
            return False
        conn = self._tcp
        if conn is not None and conn.connected and not conn.disconnecting and not conn._tempDataLen \
                and len(conn.dataBuffer) == conn.offset:
            try:
                sent = conn.socket.send(data)
            except OSError:  # EAGAIN, or an error Twisted reports on its next write
                sent = 0
            if sent == len(data):
                return True
            data = data[sent:]
        self.transport.write(data)
        return False

    # -- sending ------------------------------------------------------------
    def sendMessage(self, payload: bytes, isBinary: bool = False, *args: Any, **kwargs: Any) -> None:
        """Send, or drop silently when the connection is no longer open.

        Autobahn raises `Disconnected` on a closed connection; a reply racing a
        close is normal for servers and must not become an error.
        """
        if self.state != WebSocketServerProtocol.STATE_OPEN:
            return
        self.factory.metrics.messages_out.inc()
        super().sendMessage(payload, isBinary, *args, **kwargs)

    def sendPreparedMessage(self, preparedMsg: Any) -> None:
        if self.state != WebSocketServerProtocol.STATE_OPEN:
            return
        self.factory.metrics.messages_out.inc()
        super().sendPreparedMessage(preparedMsg)

    def send_text(self, text: str) -> None:
        self.sendMessage(text.encode("utf-8"), False)

    def unsent_bytes(self) -> int:
        """Bytes written but not yet handed to the kernel, through any TLS layer and the TCP buffer."""
        chain = self._transports
        if chain is None:
            chain = self._transports = _transport_chain(self.transport)
        return chain_unsent_bytes(chain)


def unsent_bytes(transport: Any) -> int:
    """Bytes written to `transport` (an HTTP stream's, say) not yet handed to the kernel."""
    return chain_unsent_bytes(_transport_chain(transport))


def chain_unsent_bytes(chain: tuple[Any, ...]) -> int:
    total = 0
    for t in chain:
        pending = getattr(t, "_appSendBuffer", None)  # TLS: written before the handshake ended
        if pending:
            total += sum(len(b) for b in pending)
        buffered = getattr(t, "dataBuffer", None)
        if buffered is not None:
            total += len(buffered) - t.offset + t._tempDataLen
    return total


class PeerProtocol(FreescoreServerProtocol):
    """A connection its protocol's logic knows by a `ConnId` only: a `freescore.effects.Peer`.

    Opening takes an id from the service's `connections` and calls `joined`;
    closing gives the id back and calls `left`. `send_frame` (a text) and
    `end` (`close_with`) are what a `Send` and a `Close` effect do to it.
    """

    cid: ConnId | None = None

    def opened(self) -> None:
        self.cid = self.service.connections.add(self)
        self.joined(self.cid)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        cid, self.cid = self.cid, None
        if cid is not None:
            self.service.connections.remove(cid)
            self.left(cid)

    def joined(self, cid: ConnId) -> None:
        """Open, with its id: tell the logic."""

    def left(self, cid: ConnId) -> None:
        """Closed; the id is given back: let the logic forget it."""

    def send_frame(self, frame: str) -> None:
        self.send_text(frame)

    def end(self, code: CloseCode, reason: str) -> None:
        self.close_with(code, reason)


def _transport_chain(transport: Any) -> tuple[Any, ...]:
    """The transport and the ones under it (TLS over TCP), at most four deep."""
    chain = []
    while transport is not None and len(chain) < 4:
        chain.append(transport)
        transport = getattr(transport, "transport", None)
    return tuple(chain)


def _direct_socket(transport: Any) -> Any:
    """The plain TCP transport whose socket `write_now` may use, or None (TLS, unix, other Twisted)."""
    needed = ("socket", "dataBuffer", "offset", "_tempDataLen", "connected", "disconnecting")
    if isinstance(transport, tcp.Connection) and all(hasattr(transport, a) for a in needed):
        return transport
    return None


def origin_allowed(origin: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(origin.lower(), p.lower()) for p in patterns)


class FreescoreServerFactory(WebSocketServerFactory):
    """The one factory: explicit limits, the shared registry and metrics, and the service.

    Every connection it builds gets `service` (the protocol's Twisted service,
    or whatever object the protocol reports to) as `self.service`.
    """

    def __init__(
        self,
        protocol: type[FreescoreServerProtocol],
        service: Any,
        *,
        name: str,
        limits: WebSocketSettings,
        metrics: ServiceMetrics,
        connections: ConnectionRegistry,
        reactor: Any,
        subprotocols: Iterable[str] = (),
    ) -> None:
        # No url: with one, Autobahn checks the Host header's port and rejects
        # devices that send a Host without a port on a non-standard port.
        super().__init__(url=None, protocols=list(subprotocols) or None, reactor=reactor)
        self.protocol = protocol
        self.service = service
        self.name = name
        self.limits = limits
        self.metrics = metrics
        self.connections = connections
        self.open: set[FreescoreServerProtocol] = set()
        self.pending: set[FreescoreServerProtocol] = set()
        self.also_counted: Callable[[], int] | None = None
        """The service's connections outside this factory that share its `max_connections`
        (grassroots's server-sent event streams)."""
        options: dict[str, Any] = dict(
            maxFramePayloadSize=limits.frame_limit,
            maxMessagePayloadSize=limits.max_message,
            openHandshakeTimeout=limits.open_timeout,
            closeHandshakeTimeout=limits.close_timeout,
            autoFragmentSize=0,
            failByDrop=False,
        )
        self.setProtocolOptions(**options)
        self._next_origin: str | None = None
        self._next_open_timeout: float | None = None
        self.last_built: FreescoreServerProtocol | None = None
        """The protocol `buildProtocol` made last, for `WebSocketEndpoint` to hand the connection's bytes to."""

    def in_use(self) -> int:
        """Connections counted against `max_connections`: open, opening, and `also_counted`."""
        also = self.also_counted
        return len(self.open) + len(self.pending) + (also() if also is not None else 0)

    def buildProtocol(self, addr: Any) -> Any:
        proto = super().buildProtocol(addr)
        if proto is not None:
            proto.service = self.service
            proto.origin, self._next_origin = self._next_origin, None
            if self._next_open_timeout is not None:
                # Autobahn copies its options from the factory only where the protocol has none.
                proto.openHandshakeTimeout, self._next_open_timeout = self._next_open_timeout, None
        self.last_built = proto
        return proto

    def track_open(self, proto: FreescoreServerProtocol) -> None:
        proto.gc_epoch = self.connections.epoch
        self.open.add(proto)
        self.connections.open.add(proto)
        self.metrics.connections.inc()

    def track_close(self, proto: FreescoreServerProtocol) -> None:
        self.open.discard(proto)
        self.connections.open.discard(proto)
        if proto.gc_epoch != self.connections.epoch:
            self.connections.closed += 1
            if self.connections.on_close is not None:
                self.connections.on_close()
        self.metrics.connections.dec()


class _ReadWhileWritten:
    """The transport's producer after an upgrade: back-pressure on a peer that does not read.

    The transport pauses it while more than its buffer size (64 KiB) waits to be
    written, and resumes it once that is written: what such a peer sends
    meanwhile stays unread, or the replies to it (pongs, acknowledgements) would
    grow the process without bound. A protocol that pauses the transport for
    reasons of its own pauses it again after a resume it did not want.
    """

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        pass


def _hand_over(transport: Any) -> None:
    """Let go of the HTTP channel and request a WebSocket upgrade leaves behind; read while written.

    Twisted Web registered the channel as the transport's producer; after the
    upgrade that registration does nothing (the channel is still "handling" the
    upgrade request, so it pauses nothing), but it keeps the channel, the
    request and its headers (about 25 objects) alive for the connection's
    lifetime, to become old-generation garbage when it closes. Unregistered,
    they are freed by the next young collector pass. `_ReadWhileWritten` takes
    its place.
    """
    try:
        transport.unregisterProducer()
        transport.registerProducer(_ReadWhileWritten(transport), True)
    except Exception:  # a transport without producer support: nothing was kept
        log.debug("websocket: transport {t!r} has no producer to release", t=transport)


def _has_body(request: Request) -> bool:
    """Whether the request carried body bytes (by Content-Length or chunked); an empty body is none."""
    content = request.content
    if content is None:
        return False
    size = content.seek(0, 2)
    content.seek(0)
    return bool(size)


class WebSocketEndpoint:
    """Mountable resource: WebSocket upgrades go to Autobahn, plain HTTP to `http`.

    Without `http`, a plain request gets 426 Upgrade Required with a JSON body.
    A path below the mount (`/ws/xyz`) is a 404 unless `subpaths` is set, for
    protocols whose clients put arguments in the path (worldclass rings).
    """

    isLeaf = True

    def __init__(self, factory: FreescoreServerFactory, http: IResource | None = None, subpaths: bool = False) -> None:
        self.factory = factory
        self._ws = WebSocketResource(factory)
        self._http = http
        self.subpaths = subpaths

    def getChildWithDefault(self, name: bytes, request: Request) -> IResource:
        return self

    def putChild(self, path: bytes, child: IResource) -> None:
        raise NotImplementedError("a WebSocket endpoint has no children")

    def render(self, request: Request) -> Any:
        if not self.subpaths and request.postpath not in ([], [b""]):
            return json_error(request, 404, "not found")
        upgrade = (request.getHeader("upgrade") or "").lower()
        if upgrade == "websocket" and _has_body(request):
            # Read once as the request's body, Autobahn would read it again as the first frames.
            return answer_error(request, UPGRADE_WITH_BODY)
        if upgrade == "websocket":
            # Autobahn refuses an Origin that is not a URL with a host, and
            # devices send `Origin: Espruino`: freescore applies its own origin
            # policy (onConnect), so Autobahn gets the handshake without it.
            origin = request.getHeader("origin")
            request.requestHeaders.removeHeader("origin")
            self.factory._next_origin = origin
            self.factory._next_open_timeout = self._open_time_left(request)
            transport = request.channel.transport
            try:
                result = self._ws.render(request)
                upgraded, self.factory.last_built = self.factory.last_built, None
            finally:
                self.factory._next_origin = None
                self.factory._next_open_timeout = None
            if request.channel.transport is None and transport is not None:
                _hand_over(transport)
                request.channel.upgraded = upgraded  # bytes read with the request go to it (freescore.channel)
            return result
        if self._http is not None:
            return self._http.render(request)
        return answer_error(request, UPGRADE_REQUIRED)

    def _open_time_left(self, request: Request) -> float | None:
        """What is left of `open_timeout` counted from the accept (freescore.channel), not from the upgrade.

        Otherwise a client slow to send its headers would get the whole
        open_timeout again on top of them.
        """
        started = getattr(request.channel, "request_started", None)
        limit = self.factory.limits.open_timeout
        if started is None or limit <= 0:
            return None
        return max(limit - (self.factory.reactor.seconds() - started), 0.001)

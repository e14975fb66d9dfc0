"""The event daemon's rules: roles, channels, the catch-up queue, validation, limits.

Plain Python with time passed in. The adapter feeds it decoded Socket.IO
packets (and legacy JSON commands), publishes the posts it asks for through
the hub, and hands every hub delivery back to `deliver`, which says what one
prepared frame goes to which sockets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from freescore.auth import token_matches
from freescore.events import socketio as sio
from freescore.events.wire import (
    AUTH_FAILED,
    ERR_CAPACITY,
    ERR_INVALID_CHANNEL,
    ERR_INVALID_CHANNEL_FILTER,
    ERR_INVALID_FILTER,
    ERR_RATE_LIMITED,
    ERR_UNAUTHORIZED,
    INVALID_NAMESPACE,
    OK,
    bad_command,
    coerce_start,
    legacy_parse,
    legacy_repr,
    parse_int,
    too_many,
    valid_channel,
)
from freescore.ratelimit import TokenBucket

SENDER, CLIENT = "sender", "client"


class LegacyReply(NamedTuple):
    """What a legacy receiver's frame brings: frames to send, whether to close, whether it was an error."""

    frames: list[str]
    close: bool = False
    error: bool = False


class SenderReply(NamedTuple):
    """What a legacy sender's frame brings: a reply, a post to publish, close?, error?"""

    reply: str | None
    post: Post | None = None
    close: bool = False
    error: bool = False


@dataclass(frozen=True)
class Limits:
    sender_token: str | None = None
    max_queue: int = 50
    max_clients: int = 5000
    max_subscriptions: int = 10
    max_channel: int = 100
    rate_limit: float = 20.0
    sender_rate_limit: float = 1000.0


class WaitersFull(Exception):
    """`max_clients` `/channels/` long-polls are already held; the next gets 503."""


class RateLimiter(TokenBucket):
    """A token bucket (burst = 2 s of budget) plus a strike count that ends a sustained flood.

    `check` answers "allow", "limit" (first refusal of a run: tell the peer),
    "drop" (refuse quietly) or "close" (the flood goes on). A rate of 0 allows everything.
    """

    __slots__ = ("strikes", "limited")

    def __init__(self, rate: float, now: float) -> None:
        super().__init__(rate, max(2.0 * rate, 5.0), now)
        self.strikes = 0.0
        self.limited = False

    def check(self, now: float) -> str:
        if self.rate <= 0:
            return "allow"
        elapsed = self.refill(now)
        self.strikes = max(0.0, self.strikes - elapsed * self.rate)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.limited = False
            return "allow"
        self.strikes += 1.0
        if self.strikes > self.burst:
            return "close"
        if self.limited:
            return "drop"
        self.limited = True
        return "limit"


@dataclass(frozen=True)
class Message:
    id: int
    channel: str
    message: Any

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "channel": self.channel, "message": self.message}


@dataclass
class Post:
    """A post the adapter publishes through the hub, then answers with `posted`."""

    origin: Any
    channel: str
    message: Any
    ack_id: int | None = None


class Socket:
    """One connected Socket.IO socket on namespace `/`."""

    __slots__ = ("sid", "role", "last_msg", "channels", "peer", "limiter")

    def __init__(self, sid: str, role: str, peer: Any, limiter: RateLimiter) -> None:
        self.sid = sid
        self.role = role
        self.last_msg = 0
        self.channels: frozenset[str] = frozenset()
        self.peer = peer
        self.limiter = limiter


@dataclass
class Reply:
    """What to do after one packet: Socket.IO packets to send this socket, a post, a close."""

    packets: list[str] = field(default_factory=list)
    post: Post | None = None
    close: bool = False


class LegacyReceiver:
    """A raw-WebSocket receiver of the old DMOJ protocol."""

    __slots__ = ("last_msg", "channels", "following", "peer", "limiter")

    def __init__(self, peer: Any, limiter: RateLimiter) -> None:
        self.last_msg = 0
        self.channels: frozenset[str] = frozenset()
        self.following = False
        self.peer = peer
        self.limiter = limiter


class LegacySender:
    __slots__ = ("authed", "peer", "limiter")

    def __init__(self, peer: Any, limiter: RateLimiter, authed: bool) -> None:
        self.authed = authed
        self.peer = peer
        self.limiter = limiter


@dataclass
class Delivery:
    """One hub message: the frames to write once and who gets them."""

    message: Message
    sio_packet: str
    sockets: list[Socket]
    legacy_frame: str
    legacy: list[LegacyReceiver]
    waiters: list[Any]


class Daemon:
    """Channels, the catch-up queue and the id counter of one node."""

    def __init__(self, limits: Limits, last_id: int) -> None:
        self.limits = limits
        self.last_id = last_id
        self.queue: deque[Message] = deque(maxlen=limits.max_queue)
        self.index: dict[str, set[Socket]] = {}
        self.legacy_index: dict[str, set[LegacyReceiver]] = {}
        self.waiting: dict[str, dict[Any, frozenset[str]]] = {}
        self.waiter_channels: dict[Any, frozenset[str]] = {}
        self.sockets: dict[str, Socket] = {}
        self.clients = 0

    # -- Socket.IO --------------------------------------------------------------
    def connect(self, packet: sio.Packet, sid: str, peer: Any, now: float) -> tuple[Socket | None, Reply]:
        """A CONNECT packet: join `/` as sender or client, or refuse."""
        if packet.namespace != "/":
            return None, Reply([sio.encode(sio.CONNECT_ERROR, INVALID_NAMESPACE, namespace=packet.namespace)])
        auth = packet.data if isinstance(packet.data, dict) else {}
        if auth.get("role") == SENDER:
            if not self._token_ok(auth.get("token")):
                return None, Reply([sio.encode(sio.CONNECT_ERROR, AUTH_FAILED)])
            sock = Socket(sid, SENDER, peer, RateLimiter(self.limits.sender_rate_limit, now))
            self.sockets[sid] = sock
            return sock, Reply([sio.encode(sio.CONNECT, {"sid": sid})])
        accepted = sio.encode(sio.CONNECT, {"sid": sid})
        if self.clients >= self.limits.max_clients:
            return None, Reply([accepted, sio.event("error", ERR_CAPACITY), sio.encode(sio.DISCONNECT)], close=True)
        sock = Socket(sid, CLIENT, peer, RateLimiter(self.limits.rate_limit, now))
        self.sockets[sid] = sock
        self.clients += 1
        return sock, Reply([accepted])

    def _token_ok(self, token: Any) -> bool:
        expected = self.limits.sender_token
        return expected is not None and isinstance(token, str) and token_matches(token, expected)

    def disconnect(self, sock: Socket) -> None:
        if self.sockets.pop(sock.sid, None) is None:
            return
        if sock.role == CLIENT:
            self.clients -= 1
        self._unindex(self.index, sock, sock.channels)
        sock.channels = frozenset()

    def handle(self, sock: Socket, packet: sio.Packet, now: float) -> Reply:
        """A packet from a connected socket."""
        verdict = sock.limiter.check(now)
        if verdict != "allow":
            if verdict == "close":
                return Reply(close=True)
            return Reply([sio.event("error", ERR_RATE_LIMITED)] if verdict == "limit" else [])
        if packet.namespace != "/" or packet.type != sio.EVENT:
            return Reply()
        name, args = packet.data[0], packet.data[1:]
        data = args[0] if args else None
        if sock.role == SENDER:
            return self._sender_event(sock, name, data, packet.ack_id)
        return self._client_event(sock, name, data)

    def _sender_event(self, sock: Socket, name: str, data: Any, ack_id: int | None) -> Reply:
        if name == "post":
            channel = data.get("channel") if isinstance(data, dict) else None
            if not valid_channel(channel, self.limits.max_channel):
                return Reply([self._answer(ack_id, "error", ERR_INVALID_CHANNEL)])
            return Reply(post=Post(sock, channel, data.get("message"), ack_id))
        if name == "last-msg":
            return Reply([self._answer(ack_id, "last-response", {"status": "success", "id": self.last_id})])
        return Reply()

    @staticmethod
    def _answer(ack_id: int | None, event: str, body: Any) -> str:
        return sio.ack(ack_id, body) if ack_id is not None else sio.event(event, body)

    def posted(self, post: Post, msg_id: int) -> str:
        """The reply to a sender once the hub assigned the post its id."""
        self.last_id = max(self.last_id, msg_id)
        return self._answer(post.ack_id, "post-response", {"status": "success", "id": msg_id})

    def _client_event(self, sock: Socket, name: str, data: Any) -> Reply:
        if name == "start-msg":
            sock.last_msg = coerce_start(data.get("start") if isinstance(data, dict) else None)
            return Reply([sio.event("status", OK)])
        if name == "set-filter":
            wanted = data.get("filter") if isinstance(data, dict) else None
            error = self.check_filter(wanted)
            if error is not None:
                return Reply([sio.event("error", error)])
            channels = frozenset(wanted)
            self._unindex(self.index, sock, sock.channels - channels)
            for ch in channels - sock.channels:
                self.index.setdefault(ch, set()).add(sock)
            sock.channels = channels
            out = [sio.event("status", OK)]
            for msg in self.queue:
                if msg.id > sock.last_msg and msg.channel in channels:
                    out.append(sio.event("message", msg.as_dict()))
                    sock.last_msg = msg.id
            return Reply(out)
        if name == "last-msg":
            return Reply([sio.event("last-response", {"status": "success", "id": self.last_id})])
        if name == "post":
            return Reply([sio.event("error", ERR_UNAUTHORIZED)])
        return Reply()

    def check_filter(self, wanted: Any) -> dict[str, str] | None:
        """The first failing `set-filter` check, in the spec's order, or None."""
        if not isinstance(wanted, list) or not wanted:
            return ERR_INVALID_FILTER
        if len(wanted) > self.limits.max_subscriptions:
            return too_many(self.limits.max_subscriptions)
        if not all(valid_channel(ch, self.limits.max_channel) for ch in wanted):
            return ERR_INVALID_CHANNEL_FILTER
        return None

    @staticmethod
    def _unindex(index: dict[str, set[Any]], member: Any, channels: Iterable[str]) -> None:
        for ch in channels:
            members = index.get(ch)
            if members is not None:
                members.discard(member)
                if not members:
                    del index[ch]

    # -- delivery -----------------------------------------------------------------
    def deliver(self, msg_id: int, channel: str, message: Any) -> Delivery:
        """A post reached this node: queue it, and say who gets it (once per socket)."""
        msg = Message(msg_id, channel, message)
        self._enqueue(msg)
        self.last_id = max(self.last_id, msg_id)
        body = msg.as_dict()
        sockets = list(self.index.get(channel, ()))
        for sock in sockets:
            if msg_id > sock.last_msg:
                sock.last_msg = msg_id
        legacy = list(self.legacy_index.get(channel, ()))
        waiters = list(self.waiting.get(channel, {}))
        for token in waiters:
            self.unwait(token)
        return Delivery(
            msg, sio.event("message", body), sockets,
            sio.dumps(body) if (legacy or waiters) else "", legacy, waiters,
        )

    def _enqueue(self, msg: Message) -> None:
        """Keep the catch-up queue in id order, which catch-up relies on.

        With several nodes a post can reach this node after a later one: the
        Redis hub hands a node its own posts from the publish reply, and other
        nodes' posts over the subscription.
        """
        queue = self.queue
        if not queue or msg.id > queue[-1].id:
            queue.append(msg)
            return
        at = len(queue)
        while at > 0 and queue[at - 1].id > msg.id:
            at -= 1
        if len(queue) == queue.maxlen:
            if at == 0:
                return  # older than everything kept: it would be the one dropped
            queue.popleft()
            at -= 1
        queue.insert(at, msg)

    # -- legacy receiver ------------------------------------------------------------
    def legacy_command(self, rcv: LegacyReceiver, frame: str, now: float) -> LegacyReply:
        """One JSON text frame from a legacy receiver."""
        verdict = rcv.limiter.check(now)
        if verdict == "close":
            return LegacyReply([], close=True)
        if verdict != "allow":
            return LegacyReply([sio.dumps(ERR_RATE_LIMITED)], error=True) if verdict == "limit" else LegacyReply([])
        request, error = legacy_parse(frame)
        if error is not None:
            return LegacyReply([sio.dumps(error)], error=True)
        command = request["command"].replace("_", "-")
        if command == "start-msg":
            rcv.last_msg = parse_int(request.get("start"))
            return LegacyReply([])
        if command == "set-filter":
            wanted = request.get("filter")
            err = self.check_filter(wanted)
            if err is not None:
                if err is ERR_INVALID_FILTER:
                    err = dict(err, message=f"invalid filter: {legacy_repr(wanted)}")
                return LegacyReply([sio.dumps(err)], error=True)
            if rcv.following:
                rcv.last_msg = max(rcv.last_msg, self.last_id)
            channels = frozenset(wanted)
            self._unindex(self.legacy_index, rcv, rcv.channels - channels)
            for ch in channels - rcv.channels:
                self.legacy_index.setdefault(ch, set()).add(rcv)
            rcv.channels = channels
            rcv.following = True
            out = []
            for msg in self.queue:
                if msg.id > rcv.last_msg:
                    if msg.channel in channels:
                        out.append(sio.dumps(msg.as_dict()))
                    rcv.last_msg = msg.id
            return LegacyReply(out)
        return LegacyReply([sio.dumps(bad_command(request["command"]))], error=True)

    def legacy_gone(self, rcv: LegacyReceiver) -> None:
        self._unindex(self.legacy_index, rcv, rcv.channels)
        rcv.channels = frozenset()

    # -- legacy sender ----------------------------------------------------------------
    def sender_command(self, snd: LegacySender, frame: str, now: float) -> SenderReply:
        """One JSON frame from a legacy sender."""
        verdict = snd.limiter.check(now)
        if verdict == "close":
            return SenderReply(None, close=True)
        if verdict != "allow":
            return SenderReply(sio.dumps(ERR_RATE_LIMITED), error=True) if verdict == "limit" else SenderReply(None)
        request, error = legacy_parse(frame)
        if error is not None:
            return SenderReply(sio.dumps(error), error=True)
        command = request["command"].replace("_", "-")
        if command == "auth":
            if self.limits.sender_token is None or self._token_ok(request.get("key")):
                snd.authed = True
                return SenderReply(sio.dumps(OK))
            return SenderReply(sio.dumps({"status": "error", "code": "auth-failed"}), error=True)
        if command in ("post", "last-msg") and not snd.authed:
            return SenderReply(sio.dumps({"status": "error", "code": "unauthorized"}), error=True)
        if command == "post":
            channel = request.get("channel")
            if not valid_channel(channel, self.limits.max_channel):
                return SenderReply(sio.dumps({"status": "error", "code": "invalid-channel"}), error=True)
            return SenderReply(None, post=Post(snd, channel, request.get("message")))
        if command == "last-msg":
            return SenderReply(sio.dumps({"status": "success", "id": self.last_id}))
        return SenderReply(sio.dumps(bad_command(request["command"])), error=True)

    def sender_posted(self, msg_id: int) -> str:
        self.last_id = max(self.last_id, msg_id)
        return sio.dumps({"status": "success", "id": msg_id})

    # -- /channels/ long-poll -----------------------------------------------------------
    def check_channels(self, channels: list[str]) -> dict[str, str] | None:
        """A `/channels/` list is held to the `set-filter` rules (count, then names), or None."""
        return self.check_filter(channels)

    def wait(self, token: Any, channels: frozenset[str], last: int) -> Message | None:
        """The first queued match newer than `last`, or register `token` for the next post.

        Raises WaitersFull rather than hold more than `max_clients` requests at once.
        """
        for msg in self.queue:
            if msg.id > last and msg.channel in channels:
                return msg
        if token not in self.waiter_channels and len(self.waiter_channels) >= self.limits.max_clients:
            raise WaitersFull()
        self.unwait(token)
        self.waiter_channels[token] = channels
        for ch in channels:
            self.waiting.setdefault(ch, {})[token] = channels
        return None

    def unwait(self, token: Any) -> None:
        """Drop a waiter from only the channels it waits on (not a scan of every channel)."""
        for ch in self.waiter_channels.pop(token, ()):
            waiters = self.waiting.get(ch)
            if waiters is not None and waiters.pop(token, None) is not None and not waiters:
                del self.waiting[ch]

    @property
    def waiter_count(self) -> int:
        return len(self.waiter_channels)

    def stats(self) -> dict[str, int]:
        return {
            "sockets": len(self.sockets), "clients": self.clients,
            "channels": len(self.index), "legacy_channels": len(self.legacy_index), "queued": len(self.queue),
        }

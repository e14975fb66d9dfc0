"""The event daemon's rules: roles, channels, the catch-up queue, validation, limits.

Plain Python with time passed in and opaque connection ids (`ConnId`) for
every peer: Socket.IO sockets, legacy receivers and senders, `/channels/`
long-polls. Each call answers in the kit's effect vocabulary
(`freescore.effects`): `Send` a Socket.IO packet or a legacy JSON text to one
id, `Broadcast` one message to a channel's subscribers of one kind (a `Group`:
one effect per message and kind, never one per subscriber), `Publish` a post
to the hub, `Close` a connection, `Arm` a long-poll's timeout. The adapter's
one apply loop performs them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from freescore.auth import token_matches
from freescore.effects import Arm, Broadcast, Close, ConnId, Effects, Publish, Send
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
    MAX_CHANNEL,
    OK,
    DaemonError,
    bad_command,
    coerce_start,
    legacy_parse,
    legacy_repr,
    parse_int,
    too_many,
    valid_channel,
)
from freescore.ratelimit import TokenBucket
from freescore.wireformat import CloseCode

SENDER, CLIENT = "sender", "client"
HUB_CHANNEL = "events:posts"
"""The hub channel every post goes through, whatever its source (Socket.IO, legacy, AMQP)."""

SOCKETIO, LEGACY, WAITERS = "socket.io", "legacy", "waiters"
"""The kinds of a channel's subscribers; a `Group` names one kind of one channel."""

RATE_LIMITED = "rate limit exceeded"
WAIT_TIMEOUT = "timeout"
"""The payload of a long-poll's `Arm`: when it fires, the long-poll ends without a message (504)."""

UNAVAILABLE = {"status": "error", "code": "unavailable", "message": "Event hub unavailable"}


class Answer(Effects):
    """The effects of one input, and whether that input was a protocol error (the adapter counts those)."""

    error = False


def _error(to: ConnId, frame: str) -> Answer:
    answer = Answer([Send(to, frame)])
    answer.error = True
    return answer


@dataclass(frozen=True, slots=True)
class Group:
    """A `Broadcast` target: one channel's subscribers of one kind, as they were when the message came.

    The members are a snapshot because a long-poll leaves every channel as it
    is answered; the tuple is taken from the channel's index in one step.
    """

    kind: str
    channel: str
    members: tuple[ConnId, ...] = field(compare=False)


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
    """A post to publish through the hub (a `Publish` effect's message); `posted` answers its origin.

    `origin` is the id of the Socket.IO sender or legacy sender that posted it,
    None for AMQP; `id` is an id the source fixed (AMQP keeps Django's ids).
    """

    origin: ConnId | None
    channel: str
    message: Any
    ack_id: int | None = None
    id: int | None = None

    def payload(self) -> dict[str, Any]:
        """What goes on the hub channel."""
        out: dict[str, Any] = {"channel": self.channel, "message": self.message}
        if self.id is not None:
            out["id"] = self.id
        return out


class Socket:
    """One connected Socket.IO socket on namespace `/`."""

    __slots__ = ("sid", "role", "last_msg", "channels", "limiter")

    def __init__(self, sid: str, role: str, limiter: RateLimiter) -> None:
        self.sid = sid
        self.role = role
        self.last_msg = 0
        self.channels: frozenset[str] = frozenset()
        self.limiter = limiter


class LegacyReceiver:
    """A raw-WebSocket receiver of the old DMOJ protocol."""

    __slots__ = ("last_msg", "channels", "following", "limiter")

    def __init__(self, limiter: RateLimiter) -> None:
        self.last_msg = 0
        self.channels: frozenset[str] = frozenset()
        self.following = False
        self.limiter = limiter


class LegacySender:
    __slots__ = ("authed", "limiter")

    def __init__(self, limiter: RateLimiter, authed: bool) -> None:
        self.authed = authed
        self.limiter = limiter


class Daemon:
    """Channels, the catch-up queue and the id counter of one node, over connection ids.

    `settings` is the `[events]` table (`settings.Settings`, or anything with its
    keys: `max_queue`, `max_clients`, `max_subscriptions`, `rate_limit`,
    `sender_token`, `sender_rate_limit`, `channels_timeout` in ms). It is not
    imported here: the settings module reaches code a logic module may not.
    """

    max_channel = MAX_CHANNEL

    def __init__(self, settings: Any, last_id: int) -> None:
        self.settings = settings
        self.last_id = last_id
        self.queue: deque[Message] = deque(maxlen=settings.max_queue)
        self.index: dict[str, dict[ConnId, Socket]] = {}
        self.legacy_index: dict[str, dict[ConnId, LegacyReceiver]] = {}
        self.waiting: dict[str, dict[ConnId, frozenset[str]]] = {}
        self.waiter_channels: dict[ConnId, frozenset[str]] = {}
        self.sockets: dict[ConnId, Socket] = {}
        self.receivers: dict[ConnId, LegacyReceiver] = {}
        self.senders: dict[ConnId, LegacySender] = {}
        self.connects: dict[ConnId, RateLimiter] = {}
        """Each session's CONNECT attempts, at the client rate: each is answered (joined or refused),
        so a flood of them (bad ones, or `40`/`41` over and over) would pile answers up unread."""
        self.clients = 0

    # -- Socket.IO --------------------------------------------------------------
    def receive(self, cid: ConnId, packet: sio.Packet, now: float, new_sid: Callable[[], str]) -> Effects:
        """Any packet on an Engine.IO session: CONNECT joins `/` once, DISCONNECT leaves, the rest `handle`."""
        if cid not in self.sockets:
            if packet.type != sio.CONNECT:
                return Effects()
            limiter = self.connects.get(cid)
            if limiter is None:
                limiter = self.connects[cid] = RateLimiter(self.settings.rate_limit, now)
            verdict = limiter.check(now)
            if verdict != "allow":
                fx = Effects()
                if verdict == "close":
                    fx.close(cid, CloseCode.NORMAL, RATE_LIMITED)
                return fx
            return self.connect(cid, packet, new_sid(), now)
        if packet.type == sio.CONNECT:
            return Effects()
        if packet.type == sio.DISCONNECT:
            self.leave(cid)
            return Effects()
        return self.handle(cid, packet, now)

    def connect(self, cid: ConnId, packet: sio.Packet, sid: str, now: float) -> Effects:
        """A CONNECT packet: join `/` as sender or client, or refuse."""
        fx = Effects()
        if packet.namespace != "/":
            fx.send(cid, sio.encode(sio.CONNECT_ERROR, INVALID_NAMESPACE, namespace=packet.namespace))
            return fx
        auth = packet.data if isinstance(packet.data, dict) else {}
        if auth.get("role") == SENDER:
            if not self._token_ok(auth.get("token")):
                fx.send(cid, sio.encode(sio.CONNECT_ERROR, AUTH_FAILED))
                return fx
            self.sockets[cid] = Socket(sid, SENDER, RateLimiter(self.settings.sender_rate_limit, now))
            fx.send(cid, sio.encode(sio.CONNECT, {"sid": sid}))
            return fx
        fx.send(cid, sio.encode(sio.CONNECT, {"sid": sid}))
        if self.clients >= self.settings.max_clients:
            fx.send(cid, sio.event("error", ERR_CAPACITY))
            fx.send(cid, sio.encode(sio.DISCONNECT))
            fx.close(cid, CloseCode.NORMAL, "refused")
            return fx
        self.sockets[cid] = Socket(sid, CLIENT, RateLimiter(self.settings.rate_limit, now))
        self.clients += 1
        return fx

    def role(self, cid: ConnId) -> str | None:
        """SENDER or CLIENT once the connection joined `/`, else None."""
        sock = self.sockets.get(cid)
        return None if sock is None else sock.role

    def _token_ok(self, token: Any) -> bool:
        expected = self.settings.sender_token
        return expected is not None and isinstance(token, str) and token_matches(token, expected)

    def disconnect(self, cid: ConnId) -> None:
        """The session ended."""
        self.connects.pop(cid, None)
        self.leave(cid)

    def leave(self, cid: ConnId) -> None:
        """The socket left `/` (DISCONNECT, or its session ended)."""
        sock = self.sockets.pop(cid, None)
        if sock is None:
            return
        if sock.role == CLIENT:
            self.clients -= 1
        self._unindex(self.index, cid, sock.channels)
        sock.channels = frozenset()

    def handle(self, cid: ConnId, packet: sio.Packet, now: float) -> Effects:
        """A packet from a connected socket."""
        sock = self.sockets[cid]
        fx = Effects()
        verdict = sock.limiter.check(now)
        if verdict != "allow":
            if verdict == "close":
                fx.close(cid, CloseCode.NORMAL, "rate limited")
            elif verdict == "limit":
                fx.send(cid, sio.event("error", ERR_RATE_LIMITED))
            return fx
        if packet.namespace != "/" or packet.type != sio.EVENT:
            return fx
        name, args = packet.data[0], packet.data[1:]
        data = args[0] if args else None
        if sock.role == SENDER:
            self._sender_event(fx, cid, name, data, packet.ack_id)
        else:
            self._client_event(fx, cid, sock, name, data)
        return fx

    def _sender_event(self, fx: Effects, cid: ConnId, name: str, data: Any, ack_id: int | None) -> None:
        if name == "post":
            channel = data.get("channel") if isinstance(data, dict) else None
            if not valid_channel(channel, self.max_channel):
                fx.send(cid, self._answer(ack_id, "error", ERR_INVALID_CHANNEL))
            else:
                fx.publish(HUB_CHANNEL, Post(cid, channel, data.get("message"), ack_id))
        elif name == "last-msg":
            fx.send(cid, self._answer(ack_id, "last-response", {"status": "success", "id": self.last_id}))

    @staticmethod
    def _answer(ack_id: int | None, event: str, body: Any) -> str:
        return sio.ack(ack_id, body) if ack_id is not None else sio.event(event, body)

    def posted(self, post: Post, msg_id: int) -> Effects:
        """The hub gave the post its id: answer the sender that posted it, if it is still here."""
        self.last_id = max(self.last_id, msg_id)
        fx = Effects()
        origin = post.origin
        if origin is None:
            return fx
        if origin in self.sockets:
            fx.send(origin, self._answer(post.ack_id, "post-response", {"status": "success", "id": msg_id}))
        elif origin in self.senders:
            fx.send(origin, sio.dumps({"status": "success", "id": msg_id}))
        return fx

    def unpublished(self, post: Post) -> Effects:
        """The hub refused the post: tell the sender that posted it."""
        fx = Effects()
        origin = post.origin
        if origin is None:
            return fx
        if origin in self.sockets:
            fx.send(origin, self._answer(post.ack_id, "error", UNAVAILABLE))
        elif origin in self.senders:
            fx.send(origin, sio.dumps(UNAVAILABLE))
        return fx

    def _client_event(self, fx: Effects, cid: ConnId, sock: Socket, name: str, data: Any) -> None:
        if name == "start-msg":
            sock.last_msg = coerce_start(data.get("start") if isinstance(data, dict) else None)
            fx.send(cid, sio.event("status", OK))
        elif name == "set-filter":
            wanted = data.get("filter") if isinstance(data, dict) else None
            error = self.check_filter(wanted)
            if error is not None:
                fx.send(cid, sio.event("error", error))
                return
            channels = frozenset(wanted)
            self._unindex(self.index, cid, sock.channels - channels)
            for ch in channels - sock.channels:
                self.index.setdefault(ch, {})[cid] = sock
            sock.channels = channels
            fx.send(cid, sio.event("status", OK))
            for msg in self.queue:
                if msg.id > sock.last_msg and msg.channel in channels:
                    fx.send(cid, sio.event("message", msg.as_dict()))
                    sock.last_msg = msg.id
        elif name == "last-msg":
            fx.send(cid, sio.event("last-response", {"status": "success", "id": self.last_id}))
        elif name == "post":
            fx.send(cid, sio.event("error", ERR_UNAUTHORIZED))

    def check_filter(self, wanted: Any) -> dict[str, str] | None:
        """The first failing `set-filter` check, in the spec's order, or None."""
        if not isinstance(wanted, list) or not wanted:
            return ERR_INVALID_FILTER
        if len(wanted) > self.settings.max_subscriptions:
            return too_many(self.settings.max_subscriptions)
        if not all(valid_channel(ch, self.max_channel) for ch in wanted):
            return ERR_INVALID_CHANNEL_FILTER
        return None

    @staticmethod
    def _unindex(index: dict[str, dict[ConnId, Any]], cid: ConnId, channels: Iterable[str]) -> None:
        for ch in channels:
            members = index.get(ch)
            if members is not None:
                members.pop(cid, None)
                if not members:
                    del index[ch]

    # -- delivery -----------------------------------------------------------------
    def deliver(self, msg_id: int, channel: str, message: Any) -> Effects:
        """A post reached this node: queue it, and broadcast it once to each kind of subscriber.

        At most three effects, however many subscribers: the Socket.IO packet to
        the channel's sockets, the JSON text to its legacy receivers and to its
        long-polls (which it ends).
        """
        msg = Message(msg_id, channel, message)
        self._enqueue(msg)
        if msg_id > self.last_id:
            self.last_id = msg_id
        body = msg.as_dict()
        fx = Effects()
        sockets = self.index.get(channel)
        if sockets:
            for sock in sockets.values():
                if msg_id > sock.last_msg:
                    sock.last_msg = msg_id
            fx.append(Broadcast(Group(SOCKETIO, channel, tuple(sockets)), sio.event("message", body)))
        receivers = self.legacy_index.get(channel)
        waiters = self.waiting.get(channel)
        if receivers or waiters:
            text = sio.dumps(body)
            if receivers:
                fx.append(Broadcast(Group(LEGACY, channel, tuple(receivers)), text))
            if waiters:
                members = tuple(waiters)
                for cid in members:
                    self.unwait(cid)
                fx.append(Broadcast(Group(WAITERS, channel, members), text))
        return fx

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

    # -- the legacy WebSocket peers --------------------------------------------------
    def legacy_open(self, cid: ConnId, now: float, sender: bool = False) -> None:
        """A legacy receiver, or sender (one without a `sender_token` to check needs no `auth`)."""
        if sender:
            limiter = RateLimiter(self.settings.sender_rate_limit, now)
            self.senders[cid] = LegacySender(limiter, authed=self.settings.sender_token is None)
        else:
            self.receivers[cid] = LegacyReceiver(RateLimiter(self.settings.rate_limit, now))

    def legacy_command(self, cid: ConnId, frame: str, now: float) -> Answer:
        """One JSON text frame from a legacy receiver or sender: its rate, its syntax, then its command."""
        snd = self.senders.get(cid)
        peer: LegacySender | LegacyReceiver = snd if snd is not None else self.receivers[cid]
        verdict = peer.limiter.check(now)
        if verdict != "allow":
            return self._limited(cid, verdict)
        request, error = legacy_parse(frame)
        if error is not None:
            return _error(cid, sio.dumps(error))
        command = request["command"].replace("_", "-")
        if snd is not None:
            return self._sender_command(cid, snd, request, command)
        return self._receiver_command(cid, self.receivers[cid], request, command)

    def _receiver_command(self, cid: ConnId, rcv: LegacyReceiver, request: dict[str, Any], command: str) -> Answer:
        if command == "start-msg":
            rcv.last_msg = parse_int(request.get("start"))
            return Answer()
        if command != "set-filter":
            return _error(cid, sio.dumps(bad_command(request["command"])))
        wanted = request.get("filter")
        err = self.check_filter(wanted)
        if err is not None:
            if err is ERR_INVALID_FILTER:
                err = dict(err, message=f"invalid filter: {legacy_repr(wanted)}")
            return _error(cid, sio.dumps(err))
        if rcv.following:
            rcv.last_msg = max(rcv.last_msg, self.last_id)
        channels = frozenset(wanted)
        self._unindex(self.legacy_index, cid, rcv.channels - channels)
        for ch in channels - rcv.channels:
            self.legacy_index.setdefault(ch, {})[cid] = rcv
        rcv.channels = channels
        rcv.following = True
        out = Answer()
        for msg in self.queue:
            if msg.id > rcv.last_msg:
                if msg.channel in channels:
                    out.send(cid, sio.dumps(msg.as_dict()))
                rcv.last_msg = msg.id
        return out

    @staticmethod
    def _limited(cid: ConnId, verdict: str) -> Answer:
        """A legacy peer over its rate: told once, then refused quietly, then closed 1008."""
        if verdict == "close":
            return Answer([Close(cid, CloseCode.POLICY_VIOLATION, RATE_LIMITED)])
        return _error(cid, sio.dumps(ERR_RATE_LIMITED)) if verdict == "limit" else Answer()

    def legacy_gone(self, cid: ConnId) -> None:
        self.senders.pop(cid, None)
        rcv = self.receivers.pop(cid, None)
        if rcv is not None:
            self._unindex(self.legacy_index, cid, rcv.channels)
            rcv.channels = frozenset()

    def _sender_command(self, cid: ConnId, snd: LegacySender, request: dict[str, Any], command: str) -> Answer:
        if command == "auth":
            if self.settings.sender_token is None or self._token_ok(request.get("key")):
                snd.authed = True
                return Answer([Send(cid, sio.dumps(OK))])
            return _error(cid, sio.dumps({"status": "error", "code": "auth-failed"}))
        if command in ("post", "last-msg") and not snd.authed:
            return _error(cid, sio.dumps({"status": "error", "code": "unauthorized"}))
        if command == "post":
            channel = request.get("channel")
            if not valid_channel(channel, self.max_channel):
                return _error(cid, sio.dumps({"status": "error", "code": "invalid-channel"}))
            return Answer([Publish(HUB_CHANNEL, Post(cid, channel, request.get("message")))])
        if command == "last-msg":
            return Answer([Send(cid, sio.dumps({"status": "success", "id": self.last_id}))])
        return _error(cid, sio.dumps(bad_command(request["command"])))

    # -- /channels/ long-poll -----------------------------------------------------------
    def wait(self, cid: ConnId, channels: list[str], last: int) -> Effects:
        """`GET /channels/<a>|<b>?last=N`: the first queued match newer than `last` now, or hold `cid`.

        Raises DaemonError: 400 for a channel list `set-filter` would refuse,
        503 rather than hold more than `max_clients` long-polls at once.
        """
        err = self.check_filter(channels)
        if err is not None:
            raise DaemonError(400, err)
        wanted = frozenset(channels)
        fx = Effects()
        for msg in self.queue:
            if msg.id > last and msg.channel in wanted:
                fx.send(cid, sio.dumps(msg.as_dict()))
                return fx
        if cid not in self.waiter_channels and len(self.waiter_channels) >= self.settings.max_clients:
            raise DaemonError(503, ERR_CAPACITY)
        self.unwait(cid)
        self.waiter_channels[cid] = wanted
        for ch in wanted:
            self.waiting.setdefault(ch, {})[cid] = wanted
        fx.append(Arm(cid, self.settings.channels_timeout / 1000.0, WAIT_TIMEOUT))
        return fx

    def fired(self, key: Any, payload: Any) -> Effects:
        """A timer this logic armed went off: a long-poll that got nothing ends (the adapter answers 504)."""
        fx = Effects()
        if payload == WAIT_TIMEOUT and key in self.waiter_channels:
            self.unwait(key)
            fx.close(key, CloseCode.GOING_AWAY, WAIT_TIMEOUT)
        return fx

    def unwait(self, cid: ConnId) -> None:
        """Drop a waiter from only the channels it waits on (not a scan of every channel)."""
        for ch in self.waiter_channels.pop(cid, ()):
            waiters = self.waiting.get(ch)
            if waiters is not None and waiters.pop(cid, None) is not None and not waiters:
                del self.waiting[ch]

    @property
    def waiter_count(self) -> int:
        return len(self.waiter_channels)

    def stats(self) -> dict[str, int]:
        return {
            "sockets": len(self.sockets), "clients": self.clients,
            "channels": len(self.index), "legacy_channels": len(self.legacy_index), "queued": len(self.queue),
        }

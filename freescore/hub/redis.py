"""The Redis hub: several freescore nodes behind a load balancer act as one.

Same interface as `MemoryHub` (see `freescore.hub`), backed by one Redis
server (standalone, 6.2 or newer) through txredisapi:

- publish: one Lua script does, atomically, the global id (INCR on a counter
  raised to at least `max(now_ms, last id this node saw + 1)`), the bounded
  history (`XADD ... MAXLEN keep` with the id as stream id) and the
  `PUBLISH` of `{"id", "node", "inst", "payload"}` on the channel. One round
  trip per publish; ids increase across all nodes, also after Redis lost its
  data in a restart.
- subscribe: one Redis `SUBSCRIBE` per channel per node on a dedicated
  connection; messages from other nodes are fanned out to local listeners.
  A node's own messages are delivered to its listeners straight from the
  publish reply (and skipped when they come back over the subscription), so
  every node sees every publish exactly once.
- presence: a hash per space (member -> holding instance + info) and a
  heartbeat key per running instance with a TTL, refreshed by a LoopingCall.
  `members()` drops the entries whose instance's heartbeat expired, so a
  crashed node's members disappear after `presence_ttl` seconds.
- degraded mode: while Redis is unreachable `is_up()` is False (so /status
  says 503 "hub"), local publishes still reach local listeners (with
  node-local ids), `join`/`leave`/`set` are applied locally and replayed on
  reconnection, and the loss is logged once per outage, not per message.
  txredisapi reconnects with exponential backoff (`retry_min`..`retry_max`);
  on reconnection the hub re-subscribes, re-announces its presence and
  raises the id counter above every id it handed out. A failed handshake
  (AUTH, SELECT: a paused Redis, a new password) is retried too, where
  txredisapi alone would give up for good.
- Redis answering but refusing the heartbeat (out of memory) also makes
  `is_up()` False; a heartbeat finding its key gone (FLUSHALL, expired while
  refused) re-announces presence and known values without a reconnection.
  The subscriber connection is PINGed with each heartbeat, so one dropped
  silently on the way is replaced.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import deque
from typing import Any

import txredisapi
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, fail, inlineCallbacks, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from freescore.hub import HubMessage, Listener
from freescore.hub.redis_lua import FLOOR_LUA, LEAVE_LUA, MEMBER_LUA, MEMBERS_LUA, PUBLISH_LUA, RESYNC_LUA
from freescore.hub.redis_url import RedisURL, parse_url
from freescore.wireformat import MAX_DEPTH, json_text, loads_strict

log = Logger(namespace="freescore.hub.redis")

PREFIX = "freescore:"

class _Subscription:
    """`ready` fires once Redis confirmed the channel's SUBSCRIBE (messages published after it arrive)."""

    def __init__(self, hub: RedisHub, channel: str) -> None:
        self._hub = hub
        self._channel = channel
        self.ready: Deferred[None] = Deferred()

    def cancel(self) -> None:
        self._hub._unsubscribe(self._channel, id(self))


class _CommandFactory(txredisapi.RedisFactory):
    """One command connection; tells the hub when it becomes usable or is lost."""

    def __init__(self, hub: RedisHub, url: RedisURL, timeout: float) -> None:
        super().__init__(
            str(url), url.db, 1, isLazy=True, charset="utf-8", password=url.password,
            replyTimeout=timeout, convertNumbers=False, username=url.username,
        )
        self.hub = hub

    def addConnection(self, conn: Any) -> None:
        super().addConnection(conn)
        if conn in self.pool:
            self.hub._command_up(conn)

    def stopTrying(self) -> Deferred[None]:
        """Keep reconnecting with backoff when AUTH or SELECT fails on a new connection.

        txredisapi stops for good then, but the cause is often passing: a Redis paused
        (SIGSTOP, CLIENT PAUSE) past the reply timeout, a password changed at runtime,
        a Redis still loading its data. `disconnect()` still stops everything.
        """
        return succeed(None)

    def connectionError(self, why: str) -> None:
        super().connectionError(why)
        self.hub._warn(why)

    def delConnection(self, conn: Any) -> None:
        super().delConnection(conn)
        self.hub._command_down(conn)


class _SubscriberProtocol(txredisapi.SubscriberProtocol):
    def messageReceived(self, pattern: Any, channel: str, message: str) -> None:
        self.factory.hub._received(channel, message)


class _SubscriberFactory(_CommandFactory):
    protocol = _SubscriberProtocol

    def addConnection(self, conn: Any) -> None:
        txredisapi.RedisFactory.addConnection(self, conn)
        if conn in self.pool:
            self.hub._subscriber_up(conn)

    def delConnection(self, conn: Any) -> None:
        txredisapi.RedisFactory.delConnection(self, conn)
        self.hub._subscriber_down(conn)


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """Lets the hub log a failed connection attempt (once per outage)."""

    def __init__(self, endpoint: Any, hub: RedisHub) -> None:
        self._endpoint = endpoint
        self._hub = hub

    def __repr__(self) -> str:
        return f"<Redis {self._hub.url}>"

    def connect(self, factory: Any) -> Deferred[Any]:
        d = self._endpoint.connect(factory)
        d.addErrback(self._failed)
        return d

    def _failed(self, failure: Failure) -> Failure:
        self._hub._connect_failed(failure)
        return failure


class RedisHub(Service):
    """Hub over Redis; a Twisted service (start connects, stop cleans up presence)."""

    def __init__(
        self,
        url: str,
        start_ms: int,
        reactor: Any,
        *,
        node: str = "",
        presence_ttl: float = 15.0,
        timeout: float = 5.0,
        retry_min: float = 0.5,
        retry_max: float = 10.0,
    ) -> None:
        self.url = parse_url(url)
        self.reactor = reactor
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        # A fresh token per process: a restarted node does not revive the
        # presence entries of its crashed predecessor, and never mistakes
        # another process's message for its own.
        self.inst = f"{self.node}#{secrets.token_hex(4)}"
        self.presence_ttl = presence_ttl
        self.timeout = timeout
        self.retry_min = retry_min
        self.retry_max = retry_max
        self._last_id = start_ms - 1
        self._conn: Any = None
        self._sub: Any = None
        self._was_up = False
        self._refused = False  # Redis answers but refused the last heartbeat (e.g. out of memory)
        self._warned = False
        self._errors_logged: set[tuple[str, Any, str]] = set()
        self._listeners: dict[str, dict[int, Listener]] = {}
        self._confirmed: set[str] = set()
        self._waiting: dict[str, list[Deferred[None]]] = {}
        self._presence: dict[str, dict[str, Any]] = {}
        self._spaces: set[str] = set()
        self._kv_cache: dict[str, str] = {}
        self._kv_pending: dict[str, str] = {}
        self._local_history: dict[str, deque[HubMessage]] = {}
        self._factories: list[_CommandFactory] = []
        self._pinged: Any = None  # the subscriber connection whose PING is unanswered
        self._pinged_at = 0.0
        self._ping_beats = 0
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = reactor
        self._tail_prefix = "," + _json({"node": self.node, "inst": self.inst})[1:-1] + ',"payload":'
        self._channel_prefix = f"{PREFIX}{self.url.db}:c:"

    # -- keys ----------------------------------------------------------------

    def _key(self, kind: str, name: str = "") -> str:
        return f"{PREFIX}{kind}{name}"

    # -- lifecycle -----------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if getattr(txredisapi, "hiredis", None) is None:
            log.warn("redis hub: hiredis is not installed; txredisapi's pure-Python parser is far slower "
                     "(pip install hiredis)")
        for cls in (_CommandFactory, _SubscriberFactory):
            factory = cls(self, self.url, self.timeout)
            factory.initialDelay = self.retry_min
            factory.maxDelay = self.retry_max
            endpoint: Any = HostnameEndpoint(self.reactor, self.url.host, self.url.port, timeout=self.timeout)
            if self.url.tls:
                endpoint = wrapClientTLS(optionsForClientTLS(self.url.host), endpoint)
            factory.startConnecting(_ReportingEndpoint(endpoint, self))
            self._factories.append(factory)
        self._heartbeat.start(max(self.presence_ttl / 3, 0.05), now=False)

    @inlineCallbacks
    def stopService(self) -> Any:
        super().stopService()
        if self._heartbeat.running:
            self._heartbeat.stop()
        conn = self._conn
        if conn is not None:
            # Leave every space at once instead of waiting for the heartbeat to expire.
            calls = [self._resync_space(conn, space, {}) for space in self._spaces]
            calls.append(self._cmd(conn, "DEL", self._key("hb:", self.inst)))
            yield DeferredList(calls, consumeErrors=True)
        factories, self._factories = self._factories, []
        yield DeferredList([f.disconnect() for f in factories], consumeErrors=True)
        self._conn = self._sub = None
        self._was_up = self._refused = False

    def is_up(self) -> bool:
        return self._conn is not None and self._sub is not None and not self._refused

    # -- connection state ----------------------------------------------------

    def _state_changed(self) -> None:
        up = self.is_up()
        if up and not self._was_up:
            log.info("redis hub: node {node} connected to {url}", node=self.node, url=str(self.url))
            self._warned = False
            self._errors_logged.clear()
        elif self._was_up and not up and self.running:
            self._warn(f"Redis at {self.url} refuses writes" if self._refused else f"lost the connection to {self.url}")
        self._was_up = up

    def _warn(self, what: str) -> None:
        """One warning per outage, however many messages go through meanwhile."""
        if self._warned or not self.running:
            return
        self._warned = True
        log.warn(
            "redis hub: {what}; serving local clients only (local ids, no shared history or presence) "
            "and reconnecting with backoff up to {retry}s",
            what=what, retry=self.retry_max,
        )

    def _connect_failed(self, failure: Failure) -> None:
        self._warn(f"cannot connect to {self.url}: {failure.getErrorMessage()}")

    def _command_up(self, conn: Any) -> None:
        self._conn = conn
        self._sync(conn)
        self._state_changed()

    def _command_down(self, conn: Any) -> None:
        if self._conn is conn:
            self._conn = None
            self._state_changed()

    def _subscriber_up(self, conn: Any) -> None:
        self._sub = conn
        for channel in self._listeners:
            self._send_subscribe(channel)
        self._state_changed()

    def _subscriber_down(self, conn: Any) -> None:
        if self._sub is conn:
            self._sub = None
            self._confirmed.clear()
            self._state_changed()

    def _send_subscribe(self, channel: str) -> None:
        # One channel per command, so each confirmation answers its own command.
        d = self._cmd(self._sub, "SUBSCRIBE", self._rchannel(channel), apply_timeout=False)
        d.addCallbacks(lambda _: self._confirm(channel), self._command_failed, errbackArgs=("subscribe",))

    def _confirm(self, channel: str) -> None:
        if channel in self._listeners and self._sub is not None:
            self._confirmed.add(channel)
        for d in self._waiting.pop(channel, ()):
            d.callback(None)

    def _sync(self, conn: Any) -> None:
        """After (re)connecting: heartbeat, id floor, presence and pending sets back into Redis."""
        beat = self._cmd(conn, "SET", self._key("hb:", self.inst), self.node, "PX", self._ttl_ms())
        calls = [
            beat.addCallbacks(self._beaten, self._beat_failed),
            self._eval(conn, FLOOR_LUA, [self._key("id")], [self._floor()]),
        ]
        for key, value in self._kv_pending.items():
            calls.append(self._cmd(conn, "SET", self._key("kv:", key), value))
        calls += self._announce(conn)
        self._kv_pending.clear()
        self._local_history.clear()
        DeferredList(calls, consumeErrors=True).addCallback(self._synced)

    def _announce(self, conn: Any) -> list[Deferred[Any]]:
        """This node's presence, and the values it knows, into a Redis that may have lost them.

        Values go with NX, so a newer value set by another node is kept.
        """
        calls = [self._resync_space(conn, space, self._presence.get(space, {})) for space in self._spaces]
        for key, value in self._kv_cache.items():
            if key not in self._kv_pending:
                calls.append(self._cmd(conn, "SET", self._key("kv:", key), value, "NX"))
        return calls

    def _synced(self, results: list[tuple[bool, Any]]) -> None:
        for ok, value in results:
            if not ok and not value.check(txredisapi.ConnectionError):
                log.warn("redis hub: re-synchronising with Redis failed: {error}", error=value.getErrorMessage())
                break

    def _resync_space(self, conn: Any, space: str, members: dict[str, Any]) -> Deferred[Any]:
        args = [self.inst]
        for member, info in members.items():
            args += [member, self._presence_value(info)]
        return self._eval(conn, RESYNC_LUA, [self._key("p:", space)], args)

    def _ttl_ms(self) -> int:
        return max(int(self.presence_ttl * 1000), 1)

    def _beat(self) -> None:
        self._ping_subscriber()
        conn = self._conn
        if conn is None:
            return
        # GET: the previous value tells whether the key was still there
        d = self._cmd(conn, "SET", self._key("hb:", self.inst), self.node, "PX", self._ttl_ms(), "GET")
        d.addCallbacks(self._beaten, self._beat_failed, callbackArgs=(conn,))

    def _beaten(self, previous: str | None, conn: Any = None) -> None:
        """A heartbeat written; `conn` is given for a periodic beat, which asked for the previous value."""
        if self._refused:
            self._refused = False
            self._state_changed()
        if previous is None and conn is not None and conn is self._conn:
            # Gone without a reconnection: FLUSHALL, or expired while Redis refused
            # writes. Other nodes have then dropped this node's members as crashed.
            log.warn("redis hub: node {node}'s heartbeat was gone from Redis; announcing its presence again",
                     node=self.node)
            DeferredList(self._announce(conn), consumeErrors=True).addCallback(self._synced)

    def _ping_subscriber(self) -> None:
        """A subscriber connection that a firewall or NAT dropped silently gets no error, only
        silence, and no reply timeout (it sends no commands): PING it with each heartbeat and
        end it (then subscribe again) once a PING stayed unanswered for three heartbeats and
        `timeout`. Counted in heartbeats, so a node that was frozen is not misled by the clock."""
        sub = self._sub
        if sub is None:
            return
        if self._pinged is not sub:
            self._pinged, self._pinged_at, self._ping_beats = sub, self.reactor.seconds(), 0
            self._cmd(sub, "PING", apply_timeout=False).addBoth(self._ponged, sub)
            return
        self._ping_beats += 1
        if self._ping_beats >= 3 and self.reactor.seconds() - self._pinged_at >= self.timeout:
            self._warn(f"the subscriber connection to {self.url} stopped answering")
            sub.transport.abortConnection()

    def _ponged(self, _: Any, sub: Any) -> None:
        if self._pinged is sub:
            self._pinged = None

    def _beat_failed(self, failure: Failure) -> None:
        if not failure.check(txredisapi.ConnectionError) and not self._refused:
            # Redis answers but refuses (out of memory, ...): this node's presence is
            # about to expire for the others, so it is not a working member of the hub.
            self._refused = True
            self._state_changed()
        self._command_failed(failure, "heartbeat")

    def _command_failed(self, failure: Failure, what: str) -> None:
        if failure.check(txredisapi.ConnectionError):
            self._warn(f"{what} failed: {failure.getErrorMessage()}")
            return
        # e.g. Redis out of memory: once per kind of error until the next reconnection, not per message
        error = (what, failure.type, failure.getErrorMessage())
        if error in self._errors_logged or len(self._errors_logged) > 100:
            return
        self._errors_logged.add(error)
        log.warn("redis hub: {what} failed: {error} (logged once until reconnected)",
                 what=what, error=failure.getErrorMessage())

    def _cmd(self, conn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return _command(conn, *args, **kwargs).addErrback(self._dead, conn)

    def _eval(self, conn: Any, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]:
        return _script(conn, script, keys, args).addErrback(self._dead, conn)

    def _dead(self, failure: Failure, conn: Any) -> Failure:
        """A reply timeout (or a lost connection) ends the connection: the hub is down from now on,
        before the caller sees the failure, so it does not take a lookup that timed out for an answer."""
        if failure.check(txredisapi.ConnectionError):
            self._command_down(conn)
        return failure

    # -- ids and delivery ------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def _floor(self) -> int:
        return max(self._now_ms(), self._last_id + 1)

    def _seen(self, msg_id: int) -> None:
        if msg_id > self._last_id:
            self._last_id = msg_id

    def _rchannel(self, channel: str) -> str:
        return self._channel_prefix + channel

    def _deliver(self, message: HubMessage) -> None:
        for listener in list(self._listeners.get(message.channel, {}).values()):
            try:
                listener(message)
            except Exception:
                log.failure("hub listener on {channel} failed", channel=message.channel)

    def _received(self, rchannel: Any, data: Any) -> None:
        if not isinstance(rchannel, str) or not rchannel.startswith(self._channel_prefix):
            return
        if not isinstance(data, str):  # not UTF-8: not from a freescore node
            log.warn("redis hub: dropped a non-UTF-8 message on {channel}", channel=rchannel)
            return
        channel = rchannel[len(self._channel_prefix):]
        # Our own message coming back: recognised without decoding the payload.
        comma = data.find(",", 6)
        if data.startswith('{"id":') and comma > 0 and data.startswith(self._tail_prefix, comma):
            if data[6:comma].isdigit():
                self._seen(int(data[6:comma]))
            return
        try:
            decoded = _decode(data)
            msg_id = decoded["id"]
            inst = decoded["inst"]
            payload = decoded["payload"]
            if not isinstance(msg_id, int):
                raise ValueError("id is not an integer")
        except (ValueError, KeyError, TypeError) as e:
            log.warn("redis hub: dropped a malformed message on {channel}: {error}", channel=channel, error=str(e))
            return
        self._seen(msg_id)
        if inst == self.inst:
            return  # delivered locally when the publish returned
        self._deliver(HubMessage(channel, msg_id, payload))

    # -- the Hub interface -----------------------------------------------------

    def publish(self, channel: str, payload: Any, *, keep: int = 0) -> Deferred[HubMessage]:
        try:
            encoded = _json(payload)
        except (TypeError, ValueError) as e:
            return fail(e)
        conn = self._conn
        if conn is None:
            return succeed(self._publish_locally(channel, payload, keep))
        args = [self._floor(), max(keep, 0), self._rchannel(channel), self._tail_prefix + encoded + "}"]
        d = self._eval(conn, PUBLISH_LUA, [self._key("id"), self._key("h:", channel)], args)

        def published(msg_id: Any) -> HubMessage:
            msg_id = int(msg_id)
            self._seen(msg_id)
            message = HubMessage(channel, msg_id, payload)
            self._deliver(message)
            return message

        def failed(failure: Failure) -> HubMessage:
            self._command_failed(failure, "publish")
            return self._publish_locally(channel, payload, keep)

        return d.addCallbacks(published, failed)

    def _publish_locally(self, channel: str, payload: Any, keep: int) -> HubMessage:
        """Degraded mode: a node-local id, delivery to local listeners only (later, not in this stack)."""
        message = HubMessage(channel, self._floor(), payload)
        self._seen(message.id)
        if keep > 0:
            kept = self._local_history.get(channel)
            if kept is None or kept.maxlen != keep:
                kept = self._local_history[channel] = deque(kept or (), maxlen=keep)
            kept.append(message)
        self.reactor.callLater(0, self._deliver, message)
        return message

    def subscribe(self, channel: str, listener: Listener) -> _Subscription:
        sub = _Subscription(self, channel)
        listeners = self._listeners.setdefault(channel, {})
        first = not listeners
        listeners[id(sub)] = listener
        if channel in self._confirmed:
            sub.ready.callback(None)
        else:
            self._waiting.setdefault(channel, []).append(sub.ready)
        if first and self._sub is not None:
            self._send_subscribe(channel)
        return sub

    def _unsubscribe(self, channel: str, key: int) -> None:
        listeners = self._listeners.get(channel)
        if listeners is None or listeners.pop(key, None) is None or listeners:
            return
        del self._listeners[channel]
        self._confirmed.discard(channel)
        if self._sub is not None:
            self._cmd(self._sub, "UNSUBSCRIBE", self._rchannel(channel), apply_timeout=False).addErrback(
                self._command_failed, "unsubscribe"
            )

    def history(self, channel: str, after: int | None = None, limit: int | None = None) -> Deferred[list[HubMessage]]:
        if limit is not None and limit <= 0:
            return succeed([])
        if after is not None and after >= 2**63 - 1:
            return succeed([])  # past any stream id (client-supplied catch-up ids may be anything)
        conn = self._conn
        if conn is None:
            return succeed(self._history_locally(channel, after, limit))
        key = self._key("h:", channel)
        low = "-" if after is None or after < 0 else f"{after + 1}-0"
        if limit is None:
            d = self._cmd(conn, "XRANGE", key, low, "+")
        else:
            d = self._cmd(conn, "XREVRANGE", key, "+", low, "COUNT", min(limit, 2**31)).addCallback(
                lambda rows: list(reversed(rows))
            )

        def decode(rows: list[Any]) -> list[HubMessage]:
            out = []
            for _stream_id, fields in rows:
                try:
                    item = _decode(dict(zip(fields[::2], fields[1::2], strict=True))["m"])
                    out.append(HubMessage(channel, int(item["id"]), item["payload"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a placeholder or a foreign entry
            return out

        def failed(failure: Failure) -> list[HubMessage]:
            self._command_failed(failure, "history")
            return self._history_locally(channel, after, limit)

        return d.addCallback(decode).addErrback(failed)

    def _history_locally(self, channel: str, after: int | None, limit: int | None) -> list[HubMessage]:
        kept = list(self._local_history.get(channel, ()))
        if after is not None:
            kept = [m for m in kept if m.id > after]
        if limit is not None:
            kept = kept[-limit:]
        return kept

    def _presence_value(self, info: Any) -> str:
        return f"{self.inst}\n{_json(info)}"

    def join(self, space: str, member: str, info: Any = None) -> Deferred[None]:
        try:
            value = self._presence_value(info)
        except (TypeError, ValueError) as e:
            return fail(e)
        self._presence.setdefault(space, {})[member] = info
        self._spaces.add(space)
        conn = self._conn
        if conn is None:
            return succeed(None)
        d = self._cmd(conn, "HSET", self._key("p:", space), member, value)
        return d.addCallbacks(lambda _: None, self._command_failed, errbackArgs=("join",))

    def leave(self, space: str, member: str) -> Deferred[None]:
        members = self._presence.get(space)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._presence[space]
        conn = self._conn
        if conn is None:
            return succeed(None)
        d = self._eval(conn, LEAVE_LUA, [self._key("p:", space)], [member, self.inst])
        return d.addCallbacks(lambda _: None, self._command_failed, errbackArgs=("leave",))

    def members(self, space: str) -> Deferred[dict[str, Any]]:
        conn = self._conn
        if conn is None:
            return succeed(dict(self._presence.get(space, {})))
        d = self._eval(conn, MEMBERS_LUA, [self._key("p:", space)], [self._key("hb:")])

        def decode(flat: list[str]) -> dict[str, Any]:
            out = {}
            for member, value in zip(flat[::2], flat[1::2], strict=True):
                try:
                    out[member] = _decode(value.split("\n", 1)[1])
                except (ValueError, IndexError):
                    continue
            return out

        def failed(failure: Failure) -> dict[str, Any]:
            self._command_failed(failure, "members")
            return dict(self._presence.get(space, {}))

        return d.addCallback(decode).addErrback(failed)

    def member(self, space: str, member: str) -> Deferred[Any | None]:
        conn = self._conn
        if conn is None:
            return succeed(self._presence.get(space, {}).get(member))
        d = self._eval(conn, MEMBER_LUA, [self._key("p:", space)], [member, self._key("hb:")])

        def decode(value: str | None) -> Any | None:
            if value is None:
                return None
            try:
                return _decode(value.split("\n", 1)[1])
            except (ValueError, IndexError):
                return None

        def failed(failure: Failure) -> Any | None:
            self._command_failed(failure, "member")
            return self._presence.get(space, {}).get(member)

        return d.addCallback(decode).addErrback(failed)

    def get(self, key: str) -> Deferred[str | None]:
        conn = self._conn
        if conn is None:
            return succeed(self._kv_cache.get(key))

        def got(value: str | None) -> str | None:
            if value is None:
                self._kv_cache.pop(key, None)
            else:
                self._kv_cache[key] = value
            return value

        def failed(failure: Failure) -> str | None:
            self._command_failed(failure, "get")
            return self._kv_cache.get(key)

        return self._cmd(conn, "GET", self._key("kv:", key)).addCallbacks(got, failed)

    def set(self, key: str, value: str) -> Deferred[None]:
        self._kv_cache[key] = value
        conn = self._conn
        if conn is None:
            self._kv_pending[key] = value
            return succeed(None)

        def failed(failure: Failure) -> None:
            self._command_failed(failure, "set")
            self._kv_pending[key] = value

        return self._cmd(conn, "SET", self._key("kv:", key), value).addCallbacks(lambda _: None, failed)


def _command(conn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
    """A command as a Deferred, also when the connection just went away (txredisapi raises then)."""
    try:
        return conn.execute_command(*args, **kwargs)
    except Exception:
        return fail()


def _script(conn: Any, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]:
    try:
        return conn.eval(script, keys, args)
    except Exception:
        return fail()


def _json(value: Any) -> str:
    return json_text(value)


def _decode(text: str) -> Any:
    """What another node wrote with `_json`: a service's payload (at most MAX_DEPTH deep where it came in) in
    the hub's envelope. Anything else on the server (NaN, 1e999, deeper, which raised RecursionError in
    the subscriber's reader and dropped its connection) is a ValueError: the message is dropped and logged."""
    return loads_strict(text, max_depth=2 * MAX_DEPTH)

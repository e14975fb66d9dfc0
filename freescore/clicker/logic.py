"""Clicker state and rules: the secret -> id registry, roles, retry dedup, subscriptions.

Plain Python, no reactor: the adapter feeds opaque connection ids, parsed
commands and hub messages in, and applies the effects that come back.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import random
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from freescore.clicker import wire
from freescore.effects import Broadcast, ConnId, Effect, Effects, Publish, Send
from freescore.ratelimit import TokenBucket

CHANNEL = "clicker"
"""The hub channel every node's clicker publishes on and subscribes to."""
ID_SPACE = 1_000_000
SENDER = "sender"
RECEIVER = "receiver"


class IdsExhausted(Exception):
    """All 1,000,000 ids are allocated; a REGISTER that needs a new one gets no reply."""


class Refused(enum.Enum):
    """Why a REGISTER that needs a new id is ignored (no reply: the devices take no error lines)."""

    FULL = "the registry holds max_devices ids"
    RATE = "over its budget of new ids"


class CorruptRegistry(ValueError):
    """The persisted registry cannot be read."""


@dataclass(frozen=True, slots=True)
class Registration:
    device_id: str
    secret: str
    created: bool
    """True when a fresh secret and id were made (the registry changed)."""


def _new_secret() -> str:
    return str(uuid.uuid4())


class Registry:
    """secret -> id. Every id ever handed out stays allocated, so none is given twice."""

    def __init__(
        self,
        secrets: dict[str, str] | None = None,
        *,
        rng: random.Random | None = None,
        new_secret: Callable[[], str] = _new_secret,
    ) -> None:
        self.secrets: dict[str, str] = dict(secrets or {})
        self.allocated: set[str] = set(self.secrets.values())
        self.version = 0
        """Bumped on every change, so the store knows what is on disk."""
        self._rng = rng or random.SystemRandom()
        self._new_secret = new_secret

    def __len__(self) -> int:
        return len(self.secrets)

    def lookup(self, secret: str) -> str | None:
        return self.secrets.get(secret) if secret else None

    def register(self, secret: str) -> Registration:
        """The id for a known secret, else a fresh secret and a never-used id."""
        known = self.lookup(secret)
        if known is not None:
            return Registration(known, secret, False)
        device_id = self._allocate_id()
        fresh = self._new_secret()
        while fresh in self.secrets:  # a uuid4 collision: astronomically rare, still handled
            fresh = self._new_secret()
        self.secrets[fresh] = device_id
        self.allocated.add(device_id)
        self.version += 1
        return Registration(device_id, fresh, True)

    def _allocate_id(self) -> str:
        if len(self.allocated) >= ID_SPACE:
            raise IdsExhausted("all 1000000 clicker ids are allocated")
        for _ in range(64):
            candidate = f"{self._rng.randrange(ID_SPACE):06d}"
            if candidate not in self.allocated:
                return candidate
        # Dense registry: walk from a random start to the next free id.
        start = self._rng.randrange(ID_SPACE)
        for offset in range(ID_SPACE):
            candidate = f"{(start + offset) % ID_SPACE:06d}"
            if candidate not in self.allocated:
                return candidate
        raise IdsExhausted("all 1000000 clicker ids are allocated")  # pragma: no cover

    def dump(self) -> bytes:
        return json.dumps({"version": 1, "secrets": self.secrets}, separators=(",", ":")).encode()

    @classmethod
    def load(cls, data: bytes, **kwargs: Any) -> Registry:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than Python reads
            raise CorruptRegistry(f"not JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("secrets"), dict):
            raise CorruptRegistry("expected {\"version\": 1, \"secrets\": {...}}")
        secrets = doc["secrets"]
        owners: dict[str, str] = {}
        for secret, device_id in secrets.items():
            if not (isinstance(device_id, str) and len(device_id) == 6 and device_id.isascii() and device_id.isdigit()):
                raise CorruptRegistry(f"bad id {device_id!r} for secret {secret[:8]}...")
            other = owners.setdefault(device_id, secret)
            if other != secret:  # two devices would share one id, each listener seeing both as one
                raise CorruptRegistry(f"id {device_id} is given to two secrets ({other[:8]}... and {secret[:8]}...)")
        return cls(secrets, **kwargs)


class RegisterBudget:
    """New ids per remote address: a token bucket of `burst` refilled at `per_minute`.

    Only registrations that make a new id take a token, so known secrets and
    ordinary reconnects of a few devices never notice it. Addresses in `exempt`
    (networks) are not budgeted. At most `max_addresses` buckets are kept (the
    least recently used is dropped, which only ever gives an address more room).
    """

    def __init__(self, per_minute: float, burst: int, exempt: tuple[str, ...] = (),
                 max_addresses: int = 16384) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.exempt = tuple(ipaddress.ip_network(net, strict=False) for net in exempt)
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def is_exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:  # type: ignore[union-attr]
            ip = ip.ipv4_mapped  # type: ignore[union-attr]
        return any(ip in net for net in self.exempt)

    def take(self, address: str, now: float) -> bool:
        """Spend one new id for `address` at time `now` (seconds); False when none is left."""
        if self.is_exempt(address):
            return True
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
        self._buckets[address] = bucket
        if len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return bucket.take(now)


class RetryFilter:
    """Remembers recent SCOREs per id so a retried one is relayed only once.

    draft-2: a repeat is an msgId seen (with the same timestamp and score) since
    that id's msgId last went down. A seen msgId arriving with another timestamp
    or score is a reboot (the firmware restarts msgId at 1), not a retry.
    draft-1: a repeat is a timestamp among that id's recent SCOREs.
    Memory is bounded: `window` entries per id, `max_ids` ids (least recent dropped).
    """

    def __init__(self, window: int = 64, max_ids: int = 2048) -> None:
        self.window = window
        self.max_ids = max_ids
        self._ids: OrderedDict[str, _Seen] = OrderedDict()

    def is_repeat(self, device_id: str, score: wire.Score) -> bool:
        """Runs for every SCORE: the draft-2 check is written out here, not in `_Seen` (two calls fewer)."""
        ids = self._ids
        seen = ids.get(device_id)
        if seen is None:
            seen = ids[device_id] = _Seen(self.window)
            if len(ids) > self.max_ids:
                ids.popitem(last=False)
        else:
            ids.move_to_end(device_id)
        msg_id = score[0]
        if msg_id is None:
            return seen.timestamp_repeat(score[1])
        body = hash(score)  # its timestamp and score, and the msgId it is filed under: no tuple to build
        msgs = seen.msgs
        known = msgs.get(msg_id)
        if known == body:
            return True
        size = len(msg_id)
        if known is not None or size != seen.last_size or not msg_id > seen.last_msg:
            # Not the usual case (a plain msgId above the last, of as many digits: compared as strings).
            if known is not None or (seen.last_msg is not None and _below(msg_id, seen.last_msg)):
                msgs.clear()  # msgId went down: a reboot
            seen.last_size = size if msg_id[0] != "-" else 0
        seen.last_msg = msg_id
        msgs[msg_id] = body  # always a new key (a known one cleared them): the dict's order is arrival order
        if len(msgs) > self.window:
            del msgs[next(iter(msgs))]  # the oldest
        return False


def _below(a: str, b: str) -> bool:
    """a < b for canonical decimal strings (`wire.parse_int`'s), of any length and sign."""
    return wire.int_key(a) < wire.int_key(b)


class _Seen:
    __slots__ = ("window", "last_msg", "last_size", "msgs", "timestamps", "ts_order")

    def __init__(self, window: int) -> None:
        self.window = window
        self.last_msg: str | None = None
        """The last msgId taken (canonical decimal)."""
        self.last_size = 0
        """Its digits when it is plain (not negative), else 0: a msgId of as many digits compares as a string."""
        self.msgs: dict[str, int] = {}
        """msgId -> hash of the SCORE (msgId, timestamp, score): a retry repeats all three, a reboot's msgId does not.
        In arrival order, so the oldest is the first (no second structure to touch per SCORE:
        with 1 000 devices taking turns every object a SCORE touches is out of cache)."""
        self.timestamps: set[str] = set()
        self.ts_order: deque[str] = deque()

    def timestamp_repeat(self, timestamp: str) -> bool:
        if timestamp in self.timestamps:
            return True
        self.timestamps.add(timestamp)
        self.ts_order.append(timestamp)
        if len(self.ts_order) > self.window:
            self.timestamps.discard(self.ts_order.popleft())
        return False


@dataclass(eq=False)
class Session:
    """One connection's protocol state; its role never changes once set."""

    role: str | None = None
    device_id: str | None = None
    secret: str | None = None
    live: bool = False
    """A sender counts as connected only once its REGISTERED went out."""
    ids: tuple[str, ...] = ()
    dialect: int = wire.DRAFT_2


def watchers(dialect: int, device_id: str) -> tuple[int, str]:
    """The Broadcast group of the receivers of one dialect watching `device_id`."""
    return (dialect, device_id)


@dataclass
class Clicker:
    """One node's view: its connections (by opaque id), and every node's connected ids.

    Calls take `ConnId`s and answer in effects (`freescore.effects`): `Send`
    replies, `Broadcast` to `watchers(dialect, id)` groups (`members` resolves
    them), and `Publish` on `CHANNEL` of `["score", id, timestamp, score]`,
    `["up", id, node]` and `["down", id, node]`; what comes back from the hub
    goes to `on_hub`.
    """

    registry: Registry
    node: str = "local"
    solo: bool = False
    """No other node (the embedded hub): a relay goes to this node's watchers at once, not through the hub."""
    max_devices: int | None = None
    """Registry size at which REGISTERs needing a new id are refused (None: only ID_SPACE bounds it)."""
    budget: RegisterBudget | None = None
    """New ids per remote address (None: unlimited)."""
    retries: RetryFilter = field(default_factory=RetryFilter)
    sessions: dict[ConnId, Session] = field(default_factory=dict)
    local_senders: dict[str, int] = field(default_factory=dict)
    """id -> live sender connections on this node."""
    present: dict[str, set[str]] = field(default_factory=dict)
    """id -> nodes holding at least one live sender connection for it."""
    groups: dict[tuple[int, str], set[ConnId]] = field(default_factory=dict)
    """watchers(dialect, id) -> receivers watching it."""
    watched: dict[str, int] = field(default_factory=dict)
    """id -> how many of `groups` (one per dialect, so 1 or 2) have watchers: one lookup per SCORE."""

    # -- connections --------------------------------------------------------
    def opened(self, cid: ConnId) -> Session:
        session = self.sessions[cid] = Session()
        return session

    def closed(self, cid: ConnId) -> Effects:
        """Forget the connection; when it was this node's last for a sender id, the id goes down."""
        fx = Effects()
        session = self.sessions.pop(cid, None)
        if session is None:
            return fx
        if session.role == RECEIVER:
            self._unwatch(cid, session)
            return fx
        if session.role != SENDER or not session.live:
            return fx
        session.live = False
        device_id = session.device_id
        assert device_id is not None
        count = self.local_senders.get(device_id, 0) - 1
        if count > 0:
            self.local_senders[device_id] = count
            return fx
        self.local_senders.pop(device_id, None)
        fx.publish(CHANNEL, ["down", device_id, self.node])
        return fx

    def members(self, group: tuple[int, str]) -> set[ConnId]:
        return self.groups.get(group, _EMPTY)

    # -- senders ------------------------------------------------------------
    def register(
        self, cid: ConnId, command: wire.Register, address: str = "", now: float = 0.0
    ) -> Registration | Refused | None:
        """None when the connection already has a role (the command is ignored).

        Refused (the connection keeps no role) when the secret is unknown and a
        new id may not be made now for `address` at `now` (seconds); known
        secrets are always answered.
        Raises IdsExhausted when a new id is needed and none is left.
        """
        if self.sessions[cid].role is not None:
            return None
        if self.registry.lookup(command.secret) is None:
            refused = self.admit_new(len(self.registry), address, now)
            if refused is not None:
                return refused
        self.claim_sender(cid)
        registration = self.registry.register(command.secret)
        self.assign(cid, registration)
        return registration

    def admit_new(self, registered: int | None, address: str, now: float) -> Refused | None:
        """May `address` get a new id at `now`? `registered`: ids in the registry (None: not checked).

        Admitting spends one of the address's budget.
        """
        if self.max_devices is not None and registered is not None and registered >= self.max_devices:
            return Refused.FULL
        if self.budget is not None and not self.budget.take(address, now):
            return Refused.RATE
        return None

    def unclaim(self, cid: ConnId) -> None:
        """Undo claim_sender when the registration it was for was refused."""
        session = self.sessions[cid]
        assert session.role == SENDER and session.device_id is None
        session.role = None

    def claim_sender(self, cid: ConnId) -> bool:
        """Make a role-less connection a sender (its id comes later); False if it has a role."""
        session = self.sessions[cid]
        if session.role is not None:
            return False
        session.role = SENDER
        return True

    def assign(self, cid: ConnId, registration: Registration) -> None:
        """Give a claimed sender the id and secret a registry answered."""
        session = self.sessions[cid]
        assert session.role == SENDER and session.device_id is None
        session.device_id = registration.device_id
        session.secret = registration.secret

    def registered(self, cid: ConnId, registration: Registration) -> Effects:
        """REGISTERED goes out and the sender counts as connected; on this node's first
        connection for the id, its watchers get CONNECT and the other nodes "up"."""
        session = self.sessions[cid]
        assert session.role == SENDER and session.device_id is not None and not session.live
        fx = Effects()
        fx.send(cid, wire.format_registered(registration.device_id, registration.secret))
        session.live = True
        device_id = session.device_id
        count = self.local_senders.get(device_id, 0) + 1
        self.local_senders[device_id] = count
        if count == 1:
            fx.publish(CHANNEL, ["up", device_id, self.node])
            # Applied now, not when the hub echoes it: with Redis the echo of our own publish
            # and other nodes' messages come by different connections, and another node's
            # "down" must not be applied before our "up".
            self._device_up(fx, device_id, self.node)
        return fx

    def score(self, cid: ConnId, command: wire.Score) -> tuple[Effect, ...]:
        """Every valid SCORE is acknowledged; only a live sender's first copy is relayed."""
        session = self.sessions[cid]
        reply = Send(cid, wire.format_scored(command))
        device_id = session.device_id
        if not session.live or self.retries.is_repeat(device_id, command):  # type: ignore[arg-type]
            return (reply,)
        if not self.solo:
            return reply, Publish(CHANNEL, ["score", device_id, command.timestamp, command.score])
        if device_id not in self.watched:  # nobody on this node watches it: no relay to build
            return (reply,)
        relays = self._relays(device_id, command.timestamp, command.score)  # type: ignore[arg-type]
        return (reply, *relays) if relays else (reply,)

    def _relays(self, device_id: str, timestamp: str, score: str) -> list[Broadcast]:
        """One Broadcast per dialect with watchers of `device_id` (none: nobody watches it)."""
        relays = []
        if (wire.DRAFT_2, device_id) in self.groups:
            relays.append(Broadcast((wire.DRAFT_2, device_id), wire.format_relay(wire.DRAFT_2, device_id, timestamp,
                                                                                 score)))
        if (wire.DRAFT_1, device_id) in self.groups:
            relays.append(Broadcast((wire.DRAFT_1, device_id), wire.format_relay(wire.DRAFT_1, device_id, timestamp,
                                                                                 score)))
        return relays

    # -- receivers ----------------------------------------------------------
    def listen(self, cid: ConnId, command: wire.Listen) -> Effects | None:
        """Replace the receiver's ids and dialect; the CONNECT reply, or None if ignored."""
        session = self.sessions[cid]
        if session.role == SENDER:
            return None
        self._unwatch(cid, session)
        session.role = RECEIVER
        session.ids = command.ids
        session.dialect = command.dialect
        groups = self.groups
        watched = self.watched
        for device_id in command.ids:
            group = groups.get((command.dialect, device_id))
            if group is None:
                group = groups[(command.dialect, device_id)] = set()
                watched[device_id] = watched.get(device_id, 0) + 1
            group.add(cid)
        fx = Effects()
        for line in wire.format_connect_reply([i for i in command.ids if self.present.get(i)]):
            fx.send(cid, line)
        return fx

    def _unwatch(self, cid: ConnId, session: Session) -> None:
        for device_id in session.ids:
            group = (session.dialect, device_id)
            cids = self.groups.get(group)
            if cids is not None:
                cids.discard(cid)
                if not cids:
                    del self.groups[group]
                    left = self.watched[device_id] - 1
                    if left:
                        self.watched[device_id] = left
                    else:
                        del self.watched[device_id]
        session.ids = ()

    def _to_watchers(self, fx: Effects, device_id: str, line: str) -> None:
        for dialect in (wire.DRAFT_2, wire.DRAFT_1):
            if (dialect, device_id) in self.groups:
                fx.broadcast((dialect, device_id), line)

    # -- every node's presence (from the hub) --------------------------------
    def on_hub(self, payload: list[Any]) -> Effects:
        """A message on CHANNEL from any node (this one's own included)."""
        fx = Effects()
        kind = payload[0]
        if kind == "scores":
            for device_id, timestamp, score in payload[1]:
                fx.extend(self._relays(device_id, timestamp, score))
        elif kind == "up":
            if payload[2] != self.node:  # this node's own was applied in `registered`
                self._device_up(fx, payload[1], payload[2])
        elif kind == "down":
            if self.device_down(payload[1], payload[2]):
                self._to_watchers(fx, payload[1], wire.format_disconnect(payload[1]))
        return fx

    def seed(self, holdings: set[tuple[str, str]]) -> Effects:
        """What the hub's presence lists at start: other nodes' (id, node) holdings."""
        fx = Effects()
        for device_id, node in holdings:
            if node != self.node:
                self._device_up(fx, device_id, node)
        return fx

    def _device_up(self, fx: Effects, device_id: str, node: str) -> None:
        if self.device_up(device_id, node):
            self._to_watchers(fx, device_id, wire.format_connect(device_id))

    def device_up(self, device_id: str, node: str) -> bool:
        """A node gained the id; True when the id just became connected anywhere."""
        nodes = self.present.get(device_id)
        if nodes is None:
            self.present[device_id] = {node}
            return True
        nodes.add(node)
        return False

    def remote_holdings(self) -> set[tuple[str, str]]:
        """(id, node) pairs this node believes other nodes hold."""
        return {(i, n) for i, nodes in self.present.items() for n in nodes if n != self.node}

    def reconcile(self, believed: set[tuple[str, str]], listed: set[tuple[str, str]]) -> Effects:
        """Drop what other nodes held at the query but the hub's presence no longer lists
        (a crashed node never says "down"): DISCONNECT to the watchers of the ids now gone."""
        fx = Effects()
        for device_id, node in believed - listed:
            if node != self.node and self.device_down(device_id, node):
                self._to_watchers(fx, device_id, wire.format_disconnect(device_id))
        return fx

    def device_down(self, device_id: str, node: str) -> bool:
        """A node lost the id; True when it is now connected nowhere."""
        nodes = self.present.get(device_id)
        if nodes is None:
            return False
        nodes.discard(node)
        if nodes:
            return False
        del self.present[device_id]
        return True


_EMPTY: set[ConnId] = set()

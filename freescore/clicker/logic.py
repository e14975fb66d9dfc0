"""Clicker state and rules: the secret -> id registry, roles, retry dedup, subscriptions.

Plain Python, no reactor: the adapter feeds parsed commands and hub events in
and writes what comes back.
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
from freescore.ratelimit import TokenBucket

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
        except ValueError as e:
            raise CorruptRegistry(f"not JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("secrets"), dict):
            raise CorruptRegistry("expected {\"version\": 1, \"secrets\": {...}}")
        secrets = doc["secrets"]
        for secret, device_id in secrets.items():
            if not (isinstance(device_id, str) and len(device_id) == 6 and device_id.isascii() and device_id.isdigit()):
                raise CorruptRegistry(f"bad id {device_id!r} for secret {secret[:8]}...")
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
        seen = self._ids.get(device_id)
        if seen is None:
            seen = self._ids[device_id] = _Seen(self.window)
            if len(self._ids) > self.max_ids:
                self._ids.popitem(last=False)
        else:
            self._ids.move_to_end(device_id)
        if score.msg_id is None:
            return seen.timestamp_repeat(score.timestamp)
        return seen.msg_repeat(score.msg_id, hash((score.timestamp, score.score)))


class _Seen:
    __slots__ = ("window", "last_msg", "msgs", "msg_order", "timestamps", "ts_order")

    def __init__(self, window: int) -> None:
        self.window = window
        self.last_msg: tuple[int, int, str] | None = None
        self.msgs: dict[str, int] = {}
        """msgId -> hash of (timestamp, score): a retry repeats both, a reboot's msgId does not."""
        self.msg_order: deque[str] = deque()
        self.timestamps: set[str] = set()
        self.ts_order: deque[str] = deque()

    def msg_repeat(self, msg_id: str, body: int) -> bool:
        known = self.msgs.get(msg_id)
        if known == body:
            return True
        key = wire.int_key(msg_id)
        if known is not None or (self.last_msg is not None and key < self.last_msg):  # msgId went down
            self.msgs.clear()
            self.msg_order.clear()
        self.last_msg = key
        self.msgs[msg_id] = body
        self.msg_order.append(msg_id)
        if len(self.msg_order) > self.window:
            self.msgs.pop(self.msg_order.popleft(), None)
        return False

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
    key: Any = None
    """What the adapter uses to reach the connection (its protocol object)."""


@dataclass
class ScoreOutcome:
    reply: str
    relay: bool


@dataclass
class Clicker:
    """One node's view: its own senders and receivers, and every node's connected ids."""

    registry: Registry
    node: str = "local"
    max_devices: int | None = None
    """Registry size at which REGISTERs needing a new id are refused (None: only ID_SPACE bounds it)."""
    budget: RegisterBudget | None = None
    """New ids per remote address (None: unlimited)."""
    retries: RetryFilter = field(default_factory=RetryFilter)
    local_senders: dict[str, int] = field(default_factory=dict)
    """id -> live sender connections on this node."""
    present: dict[str, set[str]] = field(default_factory=dict)
    """id -> nodes holding at least one live sender connection for it."""
    draft1: dict[str, set[Any]] = field(default_factory=dict)
    draft2: dict[str, set[Any]] = field(default_factory=dict)
    """id -> keys of receivers watching it, by dialect."""

    # -- senders ------------------------------------------------------------
    def register(
        self, session: Session, command: wire.Register, address: str = "", now: float = 0.0
    ) -> Registration | Refused | None:
        """None when the connection already has a role (the command is ignored).

        Refused (the connection keeps no role) when the secret is unknown and a
        new id may not be made now for `address` at `now` (seconds); known
        secrets are always answered.
        Raises IdsExhausted when a new id is needed and none is left.
        """
        if session.role is not None:
            return None
        if self.registry.lookup(command.secret) is None:
            refused = self.admit_new(len(self.registry), address, now)
            if refused is not None:
                return refused
        self.claim_sender(session)
        registration = self.registry.register(command.secret)
        self.assign(session, registration)
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

    def unclaim(self, session: Session) -> None:
        """Undo claim_sender when the registration it was for was refused."""
        assert session.role == SENDER and session.device_id is None
        session.role = None

    def claim_sender(self, session: Session) -> bool:
        """Make a role-less connection a sender (its id comes later); False if it has a role."""
        if session.role is not None:
            return False
        session.role = SENDER
        return True

    def assign(self, session: Session, registration: Registration) -> None:
        """Give a claimed sender the id and secret a registry answered."""
        assert session.role == SENDER and session.device_id is None
        session.device_id = registration.device_id
        session.secret = registration.secret

    def sender_live(self, session: Session) -> bool:
        """Mark the sender connected after REGISTERED went out; True on this node's 0 -> 1."""
        assert session.role == SENDER and session.device_id is not None and not session.live
        session.live = True
        count = self.local_senders.get(session.device_id, 0) + 1
        self.local_senders[session.device_id] = count
        return count == 1

    def score(self, session: Session, command: wire.Score) -> ScoreOutcome:
        """Every valid SCORE is acknowledged; only a live sender's first copy is relayed."""
        relay = (
            session.role == SENDER
            and session.live
            and not self.retries.is_repeat(session.device_id, command)  # type: ignore[arg-type]
        )
        return ScoreOutcome(wire.format_scored(command), relay)

    # -- receivers ----------------------------------------------------------
    def listen(self, session: Session, command: wire.Listen) -> list[str] | None:
        """Replace the receiver's ids and dialect; the CONNECT reply, or None if ignored."""
        if session.role == SENDER:
            return None
        self._unwatch(session)
        session.role = RECEIVER
        session.ids = command.ids
        session.dialect = command.dialect
        table = self.draft1 if command.dialect == wire.DRAFT_1 else self.draft2
        for device_id in command.ids:
            table.setdefault(device_id, set()).add(session.key)
        return wire.format_connect_reply([i for i in command.ids if self.present.get(i)])

    def _unwatch(self, session: Session) -> None:
        table = self.draft1 if session.dialect == wire.DRAFT_1 else self.draft2
        for device_id in session.ids:
            keys = table.get(device_id)
            if keys is not None:
                keys.discard(session.key)
                if not keys:
                    del table[device_id]
        session.ids = ()

    def receivers(self, device_id: str) -> tuple[set[Any], set[Any]]:
        """(draft-1 keys, draft-2 keys) watching `device_id`."""
        return self.draft1.get(device_id, _EMPTY), self.draft2.get(device_id, _EMPTY)

    # -- closing ------------------------------------------------------------
    def closed(self, session: Session) -> bool:
        """Forget the connection; True when it was this node's last for a sender id."""
        if session.role == RECEIVER:
            self._unwatch(session)
            return False
        if session.role != SENDER or not session.live:
            return False
        session.live = False
        device_id = session.device_id
        assert device_id is not None
        count = self.local_senders.get(device_id, 0) - 1
        if count > 0:
            self.local_senders[device_id] = count
            return False
        self.local_senders.pop(device_id, None)
        return True

    # -- every node's presence (from the hub) --------------------------------
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

    def reconcile(self, believed: set[tuple[str, str]], listed: set[tuple[str, str]]) -> list[str]:
        """Drop what other nodes held at the query but the hub's presence no longer lists
        (a crashed node never says "down"); the ids that became disconnected."""
        gone = []
        for device_id, node in believed - listed:
            if node != self.node and self.device_down(device_id, node):
                gone.append(device_id)
        return gone

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


_EMPTY: set[Any] = set()

"""Pings, health and the users list (pure): what worldclass's pages show of who is connected.

Optional: a FreeScore service that pings (worldclass) gives each connection a
`Client` whose outstanding pings set its health, shows the ring's `users`
list in its updates and tells the ring when someone connects, leaves or
changes health. freestyle and grassroots have no pings and no users; they
still use `Client` for identity (route, cid, session id) with `pinging=False`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from freescore.poomsae.frames import canonical, digest_of, frame
from freescore.poomsae.ids import Ring
from freescore.poomsae.routes import Route

HEALTH_INTERVAL = {"strong": 30.0, "good": 15.0, "weak": 5.0, "bad": 1.0}
"""Seconds to the next ping by health, for a 30 s base interval."""
JUDGE_RE = re.compile(r"^(?:judge)?(\d+)$", re.IGNORECASE)
"""`judge3`, or the bare number the SBS judge tablet connects with (`/worldclass/<db>/<ring>/3`)."""


def health_for(outstanding: int) -> str:
    if outstanding <= 1:
        return "strong"
    if outstanding <= 5:
        return "good"
    if outstanding <= 10:
        return "weak"
    if outstanding <= 20:
        return "bad"
    return "dead"


def judge_number(role: str) -> int | None:
    """`judge3` or `3` -> 3 (the URL role names the seat); None for any other role."""
    m = JUDGE_RE.match(role)
    return int(m.group(1)) if m else None


def title_role(role: str) -> str:
    return " ".join(w[:1].upper() + w[1:].lower() for w in role.split(" "))


@dataclass
class Client:
    """One connection's identity and ping bookkeeping."""

    id: str
    route: Route
    sessid: str | None = None
    outstanding: list[str] = field(default_factory=list)
    pinging: bool = True
    ponged: bool = False

    @property
    def cid(self) -> str:
        return (self.sessid or "")[:4] + "-" + self.id[:4]

    @property
    def role(self) -> str:
        return self.route.role

    @property
    def jid(self) -> int | None:
        return judge_number(self.role)

    @property
    def description(self) -> str:
        j = self.jid
        if j == 0:
            who = "Referee"
        elif j is not None:
            who = f"Judge {j}"
        else:
            who = title_role(self.role)
        return f"{who} ({self.cid})"

    @property
    def health(self) -> str:
        return health_for(len(self.outstanding)) if self.pinging else "n/a"

    def user(self) -> dict[str, Any]:
        return {"cid": self.cid, "role": title_role(self.role), "health": self.health}

    def status(self) -> dict[str, Any]:
        """What a health change tells the ring."""
        return {"cid": self.cid, "role": title_role(self.role), "health": self.health}

    def ping(self, timestamp: str) -> None:
        self.outstanding.append(timestamp)

    def pong(self, timestamp: Any) -> bool:
        """Clear a matching ping; True when the health changed (the first pong always does)."""
        if timestamp not in self.outstanding:
            return False
        before = self.health
        self.outstanding.remove(timestamp)
        first = not self.ponged
        self.ponged = True
        return first or self.health != before

    def next_interval(self) -> float | None:
        """Seconds to the next ping after a pong (for a 30 s base), or None to stop (dead or stopped)."""
        if not self.pinging:
            return None
        return HEALTH_INTERVAL.get(self.health)


def users_list(clients: list[Client]) -> list[dict[str, Any]]:
    return [c.user() for c in sorted(clients, key=lambda c: (c.role, c.cid))]


def users_frame(request: Any, users: list[dict[str, Any]], now: str) -> bytes:
    """`{type:"users", action:"update", digest, time, request, users}`."""
    body = canonical(users)
    return frame({
        "type": "users", "action": "update", "digest": digest_of(body), "time": now,
        "request": request, "users": users,
    })


def presence(client: Client, action: str) -> dict[str, Any]:
    """The `request` of a users update when `client` connects or disconnects."""
    return {"type": "users", "action": "update", "ring": client.route.ring_text,
            "user": {"action": action, "cid": client.cid, "id": client.id, "role": client.role}}


def health_change(client: Client, ring: str | None) -> dict[str, Any]:
    """The `request` of a users update when `client`'s health changes (`ring` None after a ping or pong)."""
    return {"type": "users", "action": "update", "ring": ring, "status": client.status()}


def ping_frame(ring: Ring, cid: str, gid: str, role: str, timestamp: str) -> bytes:
    return frame({
        "type": "server", "action": "ping", "ring": ring, "cid": cid, "gid": gid, "role": role,
        "server": {"timestamp": timestamp},
    })


def pong_timestamp(request: dict[str, Any]) -> Any:
    """The timestamp a `client pong` answers (`server.ping.timestamp`), or None."""
    server = request.get("server")
    ping = server.get("ping") if isinstance(server, dict) else None
    return ping.get("timestamp") if isinstance(ping, dict) else None

"""WebSocket routes of the FreeScore services (pure).

Upstream serves `/<service>/<db>/<ring>/<role>` and, behind Apache's `/request`
layout, `/<service>/request/<db>/<ring>/<role>`; grassroots has no role segment
(`with_role=False`). A path that does not match, or names an unsafe db or ring,
gives None: the upgrade is refused.

    parse_route("/worldclass/test/1/judge1", "worldclass")
        -> Route(db="test", ring=1, ring_text="1", role="judge1")
    parse_route("/grassroots/request/test/2", "grassroots", with_role=False)
        -> Route(db="test", ring=2, ring_text="2", role="")
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from freescore.poomsae.ids import RequestError, Ring, check_db, group_id, parse_ring


@dataclass(frozen=True)
class Route:
    db: str
    ring: Ring
    ring_text: str
    """The ring as the URL spelled it (upstream echoes this string in `request.ring`)."""
    role: str

    @property
    def gid(self) -> str:
        return group_id(self.db, self.ring)

    @property
    def group(self) -> tuple[str, Ring]:
        """Who shares broadcasts: the exact db (the data folder) and ring; `gid` is only its label."""
        return (self.db, self.ring)


def parse_route(path: str, service: str, with_role: bool = True) -> Route | None:
    """`/<service>[/request]/<db>/<ring>[/<role>]` -> Route, or None (the upgrade is refused).

    The role is URL-decoded with `+` as a space; an empty role is `observer`.
    """
    parts = path.split("?", 1)[0].split("/")
    if len(parts) < 2 or parts[0] != "" or parts[1] != service:
        return None
    rest = parts[2:]
    size = 3 if with_role else 2
    if len(rest) == size + 1 and rest[0] == "request":
        rest = rest[1:]
    if len(rest) != size:
        return None
    db, ring_text = rest[0], rest[1]
    try:
        check_db(db)
        ring = parse_ring(ring_text)
    except RequestError:
        return None
    role = ""
    if with_role:
        role = unquote(rest[2].replace("+", " ")) or "observer"
        if "/" in role or "\x00" in role:
            return None
    return Route(db=db, ring=ring, ring_text=ring_text, role=role)

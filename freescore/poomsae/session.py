"""The optional PHP session check (pure): cookie, PHP's session format, ring permission.

Upstream's pages log in through PHP; with `sessions` set, a FreeScore service
reads `sess_<id>` from that folder and lets a connection act only when the
session is authenticated for its ring (a staging login covers every ring).
"""

from __future__ import annotations

import re
from typing import Any


def session_from_cookie(header: str | None) -> str | None:
    """The `freescore-session` cookie (the PHP session id), if well formed."""
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "freescore-session" and re.fullmatch(r"[A-Za-z0-9,-]{1,128}", value):
            return value
    return None


def parse_php_session(data: bytes) -> dict[str, Any]:
    """PHP's default session format `name|<serialized>`...; unreadable parts end the parse."""
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        bar = data.find(b"|", pos)
        if bar < 0:
            break
        name = data[pos:bar].decode("utf-8", "replace")
        try:
            value, pos = _php_value(data, bar + 1)
        except (ValueError, IndexError):
            break
        out[name] = value
    return out


def _php_value(data: bytes, pos: int) -> tuple[Any, int]:
    kind = data[pos:pos + 1]
    if kind == b"N":
        return None, pos + 2
    if kind in (b"i", b"d", b"b"):
        end = data.index(b";", pos)
        raw = data[pos + 2:end].decode()
        value: Any = int(raw) if kind == b"i" else float(raw) if kind == b"d" else raw == "1"
        return value, end + 1
    if kind == b"s":
        colon = data.index(b":", pos + 2)
        length = int(data[pos + 2:colon])
        start = colon + 2
        return data[start:start + length].decode("utf-8", "replace"), start + length + 2
    if kind == b"a":
        colon = data.index(b":", pos + 2)
        count = int(data[pos + 2:colon])
        pos = colon + 2
        items: dict[Any, Any] = {}
        for _ in range(count):
            key, pos = _php_value(data, pos)
            items[key], pos = _php_value(data, pos)
        return items, pos + 1
    raise ValueError(f"unsupported PHP type {kind!r}")


def session_allows(session: dict[str, Any], ring_text: str) -> bool:
    """`is_auth` truthy and `ring` empty, the URL ring, or staging (a staging login covers all rings)."""
    if not session.get("is_auth"):
        return False
    ring = session.get("ring")
    if ring in (None, "", 0, False, "staging"):
        return True
    return str(ring).lstrip("0") == ring_text.lstrip("0") or str(ring) == ring_text

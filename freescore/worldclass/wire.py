"""Worldclass frames and paths (pure): parse what the FreeScore pages send, format what they expect.

Everything a URL or a request names (db, ring, divid) is checked here against
the spec's identifier rules, so no later layer can be walked out of the data
root. Broadcast frames are built around one canonical encoding of the state,
which also gives the digest the pages use to drop unchanged frames.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time as _time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

DB_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
DIVID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]{0,63}$")
RING_RE = re.compile(r"^[1-9][0-9]{0,2}$")
JUDGE_RE = re.compile(r"^judge(\d+)$", re.IGNORECASE)
SILENT = re.compile(r"^(schedule(_.*)?|register_device)$")


class RequestError(ValueError):
    """A request the service refuses; `message` goes back to the sender as `error`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


Ring = int | str


@dataclass(frozen=True)
class Route:
    db: str
    ring: Ring
    ring_text: str
    role: str

    @property
    def gid(self) -> str:
        return group_id(self.db, self.ring)

    @property
    def group(self) -> tuple[str, Ring]:
        """Who shares broadcasts: the exact db (the data folder) and ring; `gid` is only its label."""
        return (self.db, self.ring)


def group_id(db: str, ring: Ring) -> str:
    return f"{db.lower()}-staging" if ring == "staging" else f"{db.lower()}-ring{int(ring):02d}"


def parse_ring(value: Any, field: str = "ring") -> Ring:
    """`staging` or a ring number 1-999 (int or decimal string)."""
    if isinstance(value, bool):
        raise RequestError(f"Invalid {field} '{value}'")
    if value == "staging":
        return "staging"
    if isinstance(value, int) and 1 <= value <= 999:
        return value
    if isinstance(value, str) and RING_RE.match(value):
        return int(value)
    raise RequestError(f"Invalid {field} '{value}'")


def check_divid(value: Any, field: str = "divid") -> str:
    if not isinstance(value, str) or not DIVID_RE.match(value):
        raise RequestError(f"Invalid {field} '{value}'")
    return value


def check_db(value: Any) -> str:
    if not isinstance(value, str) or not DB_RE.match(value):
        raise RequestError(f"Invalid db '{value}'")
    return value


def parse_route(path: str) -> Route | None:
    """`/worldclass[/request]/<db>/<ring>/<role>` -> Route, or None (the upgrade is refused)."""
    parts = path.split("?", 1)[0].split("/")
    if len(parts) < 2 or parts[0] != "" or parts[1] != "worldclass":
        return None
    rest = parts[2:]
    if len(rest) == 4 and rest[0] == "request":
        rest = rest[1:]
    if len(rest) != 3:
        return None
    db, ring_text, role_text = rest
    try:
        check_db(db)
        ring = parse_ring(ring_text)
    except RequestError:
        return None
    role = unquote(role_text.replace("+", " ")) or "observer"
    if "/" in role or "\x00" in role:
        return None
    return Route(db=db, ring=ring, ring_text=ring_text, role=role)


def judge_number(role: str) -> int | None:
    m = JUDGE_RE.match(role)
    return int(m.group(1)) if m else None


def title_role(role: str) -> str:
    return " ".join(w[:1].upper() + w[1:].lower() for w in role.split(" "))


def session_from_cookie(header: str | None) -> str | None:
    """The `freescore-session` cookie (the PHP session id), if well formed."""
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "freescore-session" and re.fullmatch(r"[A-Za-z0-9,-]{1,128}", value):
            return value
    return None


# -- requests ------------------------------------------------------------------

def decode_request(payload: bytes | str) -> dict[str, Any]:
    """Parse one request frame; raises RequestError for anything but `{type, action, ...}`."""
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        obj = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise RequestError(f"Invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise RequestError("Invalid request: not a JSON object")
    for key in ("type", "action"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise RequestError(f"Invalid request: '{key}' must be a non-empty string")
    return obj


def handler_name(value: str) -> str:
    """`award penalty` -> `award_penalty`, as upstream dispatches."""
    return "_".join(value.split())


def is_silent(request: dict[str, Any]) -> bool:
    """Requests upstream answers with nothing (schedule *, register device)."""
    return bool(SILENT.match(handler_name(request["action"])))


def to_float(value: Any, field: str, lo: float = 0.0, hi: float = 10.0) -> float:
    """Numbers and numeric strings (the pages send strings) within [lo, hi]."""
    if isinstance(value, bool):
        raise RequestError(f"Invalid {field} '{value}'")
    if isinstance(value, str):
        try:
            value = float(value.strip()) if value.strip() else 0.0
        except ValueError:
            raise RequestError(f"Invalid {field} '{value}'") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
        raise RequestError(f"Invalid {field} '{value}'")
    return float(value)


def to_int(value: Any, field: str, lo: int = 0, hi: int = 100000) -> int:
    if isinstance(value, bool):
        raise RequestError(f"Invalid {field} '{value}'")
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise RequestError(f"Invalid {field} '{value}'")
    return value


def to_bool(value: Any) -> bool:
    if value in (True, 1, "1", "true"):
        return True
    return False


def require(request: dict[str, Any], field: str, kind: type | tuple[type, ...] | None = None) -> Any:
    if field not in request or request[field] is None:
        raise RequestError(f"Missing field '{field}'")
    value = request[field]
    if kind is not None and not isinstance(value, kind):
        raise RequestError(f"Invalid {field}: wrong type")
    return value


# -- frames --------------------------------------------------------------------

def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of(canonical_text: str) -> str:
    return hashlib.sha1(canonical_text.encode("utf-8")).hexdigest()


def utc_time(seconds: float | None = None) -> str:
    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(_time.time() if seconds is None else seconds))


def update_frame(type_: str, key: str, payload: Any, request: Any, users: list[dict[str, Any]], now: str) -> bytes:
    """`{type, action:"update", digest, time, <key>, request, users}` with the payload encoded once."""
    body = canonical(payload)
    fields = {
        "action": '"update"',
        "digest": '"' + digest_of(body) + '"',
        key: body,
        "request": canonical(request),
        "time": canonical(now),
        "type": canonical(type_),
        "users": canonical(users),
    }
    return ("{" + ",".join(f'"{k}":{fields[k]}' for k in sorted(fields)) + "}").encode("utf-8")


def users_frame(request: Any, users: list[dict[str, Any]], now: str) -> bytes:
    body = canonical(users)
    return canonical({
        "type": "users", "action": "update", "digest": digest_of(body), "time": now,
        "request": request, "users": users,
    }).encode("utf-8")


def error_frame(message: str, request: Any = None) -> bytes:
    """Error frames never carry a `type`."""
    out: dict[str, Any] = {"error": message}
    if request is not None:
        out["request"] = request
    return canonical(out).encode("utf-8")


def ping_frame(ring: Ring, cid: str, gid: str, role: str, timestamp: str) -> bytes:
    return canonical({
        "type": "server", "action": "ping", "ring": ring, "cid": cid, "gid": gid, "role": role,
        "server": {"timestamp": timestamp},
    }).encode("utf-8")


def frame(obj: Any) -> bytes:
    return canonical(obj).encode("utf-8")


# -- PHP sessions (the optional session check, §3) ----------------------------------

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

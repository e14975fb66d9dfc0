"""The event daemon's own messages, sans-I/O: error objects, the legacy JSON commands, number rules.

Engine.IO (`engineio`) and Socket.IO (`socketio`) carry these on the
Socket.IO endpoint; the legacy DMOJ endpoints speak them as plain JSON frames.
"""

from __future__ import annotations

from typing import Any

from freescore.wireformat import MAX_DEPTH, HttpError, encode_json, loads_strict

OK = {"status": "success"}
ERR_INVALID_FILTER = {"status": "error", "code": "invalid-filter", "message": "Invalid filter"}
ERR_INVALID_CHANNEL_FILTER = {
    "status": "error", "code": "invalid-channel", "message": "Channel must be a non-empty string (max 100 chars)",
}
ERR_INVALID_CHANNEL = {"status": "error", "code": "invalid-channel", "message": "Invalid channel"}
ERR_UNAUTHORIZED = {"status": "error", "code": "unauthorized", "message": "Unauthorized operation"}
ERR_CAPACITY = {"status": "error", "code": "server-capacity", "message": "Server at capacity"}
ERR_RATE_LIMITED = {"status": "error", "code": "rate-limited", "message": "Too many packets, slow down"}
AUTH_FAILED = {"message": "Authentication failed"}
INVALID_NAMESPACE = {"message": "Invalid namespace"}


def too_many(limit: int) -> dict[str, str]:
    return {
        "status": "error", "code": "too-many-subscriptions",
        "message": f"Maximum {limit} subscriptions per connection",
    }


def parse_json(text: str) -> Any:
    """Strict JSON from a peer (`loads_strict`: nothing that re-encodes as NaN or Infinity), at most
    `MAX_DEPTH` arrays and objects deep; ValueError otherwise."""
    return loads_strict(text, max_depth=MAX_DEPTH)


MAX_CHANNEL = 100
"""Longest channel name, in characters (upstream's)."""


def valid_channel(name: Any, limit: int = MAX_CHANNEL) -> bool:
    return isinstance(name, str) and 0 < len(name) <= limit


def coerce_start(value: Any) -> int:
    """`start-msg` start: a non-negative integer, anything else 0 (upstream silently broke)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 0:
        return value
    return 0


def parse_int(value: Any) -> int:
    """JavaScript `parseInt` for legacy `start` and `?last=`: leading digits, else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float):
        return max(int(value), 0) if value == value and abs(value) != float("inf") else 0
    if not isinstance(value, str):
        return 0
    text = value.strip()
    sign = 1
    if text[:1] in "+-" and text[:1]:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = ""
    for ch in text[:20]:
        if not ("0" <= ch <= "9"):
            break
        digits += ch
    return max(sign * int(digits), 0) if digits else 0


def bad_command(command: Any) -> dict[str, str]:
    return {"status": "error", "code": "bad-command", "message": f"bad command: {command}"}


def legacy_repr(value: Any) -> str:
    """Roughly how JavaScript string-concatenates a value, for `invalid filter: ...`."""
    if value is None:
        return "undefined"
    if isinstance(value, list):
        return ",".join("" if v is None else legacy_repr(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def legacy_parse(frame: str) -> tuple[dict[str, Any], dict[str, str] | None]:
    """A legacy JSON command, or the `syntax-error` to answer."""
    try:
        request = parse_json(frame)
    except ValueError as e:  # parse_json: too deep is a ValueError too
        return {}, {"status": "error", "code": "syntax-error", "message": str(e)}
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        return {}, {"status": "error", "code": "syntax-error", "message": "no command specified"}
    return request, None


class DaemonError(HttpError):
    """An HTTP error answered with one of the daemon's error objects (`/channels/` checks, capacity)."""

    def __init__(self, status: int, error: dict[str, str]) -> None:
        super().__init__(status, error.get("message", error["code"]))
        self.error = error

    def body(self) -> bytes:
        return encode_json(self.error)


class PlainError(HttpError):
    """An HTTP error whose body is its message as text, as upstream answers it."""

    def __init__(self, status: int, message: str, content_type: str = "text/plain; charset=UTF-8") -> None:
        super().__init__(status, message)
        self.content_type = content_type

    def body(self) -> bytes:
        return self.message.encode("utf-8")

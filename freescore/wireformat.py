"""What every protocol's wire layer shares: compact JSON, close codes, HTTP errors.

Pure Python (no Twisted, no Autobahn), so `wire` and `logic` modules can name
a close code or raise an HTTP error without importing the adapters' world.
"""

from __future__ import annotations

import enum
import json
import math
import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(obj: Any, **options: Any) -> str:
    """JSON text that always encodes as UTF-8, the one encoder for frames, HTTP bodies and JSON files.

    Compact unless `options` (json.dumps's: `sort_keys`, `indent`, `separators`) say otherwise.
    A peer may send `"\\ud800"`, which JSON allows and UTF-8 cannot carry: such a
    lone surrogate stays escaped, as JavaScript's `JSON.stringify` writes it,
    instead of failing every later `.encode("utf-8")` of the text.
    """
    text = json.dumps(obj, **{"separators": (",", ":"), **options, "ensure_ascii": False})
    if not text.isascii() and _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub(_escape, text)
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text} is out of range")
    return value


MAX_DEPTH = 100
"""Deepest JSON nesting taken from a peer or a data file (`loads_strict(max_depth=MAX_DEPTH)`). What is
parsed is encoded, copied or walked again deeper in the stack (the hub, the fan-out, a division's copy),
where Python's recursion limit would fail it after the parse succeeded; no real message comes near."""


def loads_strict(text: str, *, reencoded: bool = True, max_depth: int | None = None) -> Any:
    """JSON that browsers' `JSON.parse` takes: no NaN or Infinity, and, when the value is to be
    `reencoded`, no number so large it becomes one (`1e999`, which Python writes as `Infinity`);
    with `max_depth`, at most that many arrays and objects deep. ValueError otherwise (nesting
    deeper than Python's own parser reads is one too, not a RecursionError)."""
    try:
        if reencoded:
            value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
        else:
            value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested deeper than Python reads") from None
    if max_depth is not None and text.count("[") + text.count("{") > max_depth and _deeper_than(value, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Without recursion: the value is the deep one."""
    level: list[Any] = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v)
                 if isinstance(c, (dict, list))]
        if not level:
            return False
    return True


def encode_json(obj: Any) -> bytes:
    """`json_text` as UTF-8 bytes."""
    return json_text(obj).encode("utf-8")


class CloseCode(enum.IntEnum):
    """The WebSocket close codes freescore sends (RFC 6455 section 7.4.1, IANA registry)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    """A text message that is not UTF-8."""
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    """The server cannot keep up with this connection (slow consumer, slow backend)."""


class HttpError(Exception):
    """A request answered with an error status and a message a user can read.

    The body is `{"error": message}`; a protocol whose specification gives
    another error shape (Engine.IO, the gateway's push API) overrides `body`.
    `headers` are sent with it (`allow`, `www-authenticate`, ...).
    """

    content_type = "application/json"

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.headers = headers or {}

    def body(self) -> bytes:
        return encode_json({"error": self.message})

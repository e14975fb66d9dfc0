"""Request frames of the FreeScore pages (pure): decode, dispatch name, typed fields.

Every FreeScore page sends one JSON object per frame with a `type` and an
`action`; upstream dispatches on `<type>_<action>` with whitespace runs turned
into `_` (`division award penalty` -> `division_award_penalty`). Field readers
accept what the pages really send (numbers as strings) and raise
`RequestError` with upstream's `Invalid <field> '<value>'` wording otherwise.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from freescore.poomsae.ids import RequestError
from freescore.wireformat import MAX_DEPTH, loads_strict

_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_request(payload: bytes | str) -> dict[str, Any]:
    """Parse one request frame; raises RequestError for anything but `{type, action, ...}`.

    Strict (`loads_strict`): what is read goes back out in answers, broadcasts and files, so
    NaN, Infinity or 1e999 (JSON.parse refuses what Python writes for them) and nesting past
    `MAX_DEPTH` are refused here.
    """
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        obj = loads_strict(text, max_depth=MAX_DEPTH)
    except ValueError as e:  # UnicodeDecodeError is one
        raise RequestError(f"Invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise RequestError("Invalid request: not a JSON object")
    if lone_surrogate_in(text, obj):
        raise RequestError("Invalid JSON: a lone surrogate is not text")
    for key in ("type", "action"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise RequestError(f"Invalid request: '{key}' must be a non-empty string")
    return obj


def lone_surrogate_in(text: str, obj: Any) -> bool:
    """`obj`, parsed from `text`, holds a lone surrogate (`"\\ud800"`): a division file's text lines cannot."""
    if "\\u" not in text and not _SURROGATE.search(text):  # text decoded from UTF-8 holds none
        return False
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def handler_name(value: str) -> str:
    """`award penalty` -> `award_penalty`, as upstream dispatches."""
    return "_".join(value.split())


def request_kind(request: dict[str, Any]) -> str:
    """The handler key of a decoded request: `<type>_<action>` (`division_award_penalty`)."""
    return f"{handler_name(request['type'])}_{handler_name(request['action'])}"


def to_float(value: Any, field: str, lo: float = 0.0, hi: float = 10.0) -> float:
    """Numbers and numeric strings (the pages send strings) within [lo, hi]; "" is 0."""
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
    """Integers, integral floats and decimal strings within [lo, hi]."""
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
    """Upstream's truthiness for flags such as `overwrite`."""
    return value in (True, 1, "1", "true")


def require(request: dict[str, Any], field: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """`request[field]`, present, not null and (when `kind` is given) of that type."""
    if field not in request or request[field] is None:
        raise RequestError(f"Missing field '{field}'")
    value = request[field]
    if kind is not None and not isinstance(value, kind):
        raise RequestError(f"Invalid {field}: wrong type")
    return value

"""What every FreeScore service sends (pure): canonical JSON, digests, error frames.

Broadcast payloads are encoded once, canonically (sorted keys, no spaces, UTF-8
as is), so the digest the pages use to drop unchanged frames is stable.
Error frames never carry a `type`; the HTTP side answers unknown paths with
`{"error": "<prefix>: Unknown command: <path>"}` where the prefix names the
service (`FreeScore Worldclass Service Error`, `FreeScore FreeStyle Service Error`).
"""

from __future__ import annotations

import hashlib
import time as _time
from dataclasses import dataclass
from typing import Any

from freescore.wireformat import json_text

PROCESSING = "Error while processing request: "


def canonical(value: Any) -> str:
    """Sorted keys, no spaces; a lone surrogate a file holds (`"\\ud800"`) stays escaped (UTF-8 cannot carry it)."""
    return json_text(value, sort_keys=True)


def frame(obj: Any) -> bytes:
    """One frame, canonical JSON as UTF-8."""
    return canonical(obj).encode("utf-8")


def digest_of(canonical_text: str) -> str:
    """SHA-1 hex of the canonical payload (the pages compare it with the last one they drew)."""
    return hashlib.sha1(canonical_text.encode("utf-8")).hexdigest()


def utc_time(seconds: float | None = None) -> str:
    """`2026-12-04T14:15:36Z`: the `time` field and ping timestamps."""
    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(_time.time() if seconds is None else seconds))


@dataclass(frozen=True)
class Update:
    """A ring or division update as logic decides it (the frame of a `Broadcast` effect).

    The service frames it once per group at send time (`update_frame`, plus what
    it adds: worldclass's `time` and the group's `users`).
    """

    type: str
    key: str
    """`division` or `ring`: the field that carries `payload`."""
    payload: Any
    request: Any


def update_frame(type_: str, key: str, payload: Any, request: Any, **extra: Any) -> bytes:
    """`{"action":"update","digest",<key>:payload,"request","type",...extra}`, keys sorted.

    The payload is encoded once and its digest taken from those same bytes;
    worldclass adds `time` and `users`, freestyle and grassroots add nothing.
    """
    body = canonical(payload)
    fields = {"action": '"update"', "digest": '"' + digest_of(body) + '"', key: body,
              "request": canonical(request), "type": canonical(type_)}
    fields.update((k, canonical(v)) for k, v in extra.items())
    return ("{" + ",".join(f'"{k}":{fields[k]}' for k in sorted(fields)) + "}").encode("utf-8")


def error_frame(message: str, request: Any = None) -> bytes:
    """`{"error": message[, "request": request]}`; error frames never carry a `type`."""
    out: dict[str, Any] = {"error": message}
    if request is not None:
        out["request"] = request
    return frame(out)


def processing_error(message: str) -> str:
    """Upstream's wording for a request that failed inside the service (note the newline)."""
    return f"{PROCESSING}{message}\n"


def unknown_command(prefix: str, path: str) -> str:
    """The HTTP side's answer text for a path it does not serve (`path` without its leading slash)."""
    return f"{prefix}: Unknown command: {path}"

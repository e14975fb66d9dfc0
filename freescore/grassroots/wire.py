"""Grassroots on the wire (pure): the REST routes, the WebSocket route and frames, the SSE payload.

Three transports reach the same rings (spec §5-7): the judge tablet's REST
GETs on the dedicated listener, the ring computer's WebSocket, and the
display's server-sent events. REST paths are matched as Mojolicious does
(literal routes first; a placeholder never holds `/` or `.`), every answer
is JSON with upstream's exact keys (the tiebreaker answer's `tiebraker`
included), and anything unmatched is upstream's "Unknown command".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from freescore.grassroots.divfile import MAX_JUDGES
from freescore.poomsae.frames import canonical, error_frame, frame, update_frame
from freescore.poomsae.ids import RequestError, Ring, check_db, check_divid, parse_ring
from freescore.poomsae.requests import lone_surrogate_in
from freescore.wireformat import MAX_DEPTH, loads_strict

SERVICE = "grassroots"
UNKNOWN_COMMAND = "FreeScore Grassroots: Unknown command"
VOTES = ("blue", "red", "clear")
_PLACEHOLDER = re.compile(r"^[^/.]+$")
_SCORE10 = re.compile(r"^-?\d{1,4}$")
_NUMERIC = re.compile(r"^\d+(\.\d+)?$")
_HEADER_KEY = re.compile(r"^[A-Za-z_][\w.-]{0,63}$")
_LINE_BREAK = re.compile(r"[\r\n]")
_NAME = re.compile(r"^[^\s#][^\t\r\n]*$")
"""An athlete's line: not blank, not a `#` header, no tab (the column separator) nor line break."""

__all__ = ["RequestError", "Rest", "UnknownCommand", "parse_rest"]


class UnknownCommand(Exception):
    """A path no REST route matches: `{"error":"FreeScore Grassroots: Unknown command"}`."""


@dataclass(frozen=True)
class Rest:
    """One REST request, parsed: `action` in the spec's vocabulary (§7)."""

    db: str
    ring: Ring
    action: str
    """judges, division list|next|previous, display, athlete next|previous, score, vote, tb, save"""
    judge: int | None = None
    value: Any = None
    """score: the score (score10 / 10); vote: blue|red|clear; tb: blue|red or a number; save: the divid"""
    body: dict[str, Any] = field(default_factory=dict)


def _judge(text: str) -> int:
    if not text.isdigit() or len(text) > 2:
        raise RequestError(f"Invalid judge '{text}'")
    return int(text)


def _tb_value(text: str) -> str | float:
    if text in ("blue", "red"):
        return text
    if _SCORE10.match(text):
        return int(text) / 10
    raise RequestError(f"Invalid tiebreaker '{text}'")


def parse_rest(method: str, segments: list[str], body: bytes = b"") -> Rest:
    """A REST request from its method and path segments (below the mount point).

    Raises UnknownCommand when no route matches, RequestError when one
    matches but names something invalid (a bad ring, judge, score or body).
    """
    if len(segments) < 3 or not all(_PLACEHOLDER.match(s) for s in segments):
        raise UnknownCommand()
    db_text, ring_text, *rest = segments
    if method == "POST":
        if len(rest) != 1:
            raise UnknownCommand()
        db, ring = check_db(db_text), parse_ring(ring_text)
        return Rest(db, ring, "save", value=check_divid(rest[0]), body=_post_body(body))
    if method not in ("GET", "HEAD"):
        raise UnknownCommand()
    literal = {
        ("judges",): "judges", ("display",): "display",
        ("division", "list"): "division list", ("division", "next"): "division next",
        ("division", "previous"): "division previous",
        ("athlete", "next"): "athlete next", ("athlete", "previous"): "athlete previous",
    }.get(tuple(rest))
    if literal is None and not (len(rest) == 2 or (len(rest) == 3 and rest[1] in ("vote", "tb"))):
        raise UnknownCommand()
    db, ring = check_db(db_text), parse_ring(ring_text)
    if literal is not None:
        return Rest(db, ring, literal)
    judge = _judge(rest[0])
    if len(rest) == 2:
        if not _SCORE10.match(rest[1]):
            raise RequestError(f"Invalid score '{rest[1]}'")
        return Rest(db, ring, "score", judge=judge, value=int(rest[1]) / 10)
    if rest[1] == "vote":
        if rest[2] not in VOTES:
            raise RequestError(f"Invalid vote '{rest[2]}'")
        return Rest(db, ring, "vote", judge=judge, value=rest[2])
    return Rest(db, ring, "tb", judge=judge, value=_tb_value(rest[2]))


def _post_body(body: bytes) -> dict[str, Any]:
    """The division editor's JSON: `{name, header{}, athletes[], overwrite?}`."""
    try:
        text = body.decode("utf-8")
        obj = loads_strict(text, max_depth=MAX_DEPTH)  # as a WebSocket request: NaN, 1e999 are not kept
    except ValueError:  # UnicodeDecodeError is one
        raise RequestError("Invalid division: not JSON") from None
    if not isinstance(obj, dict):
        raise RequestError("Invalid division: not a JSON object")
    if lone_surrogate_in(text, obj):
        raise RequestError("Invalid division: a lone surrogate is not text")
    header = obj.get("header", {})
    if not isinstance(header, dict):
        raise RequestError("Invalid division: 'header' must be an object")
    for key, value in header.items():
        if not _HEADER_KEY.match(key) or (isinstance(value, str) and _LINE_BREAK.search(value)):
            raise RequestError(f"Invalid division: header '{key}' cannot stand on one '# key=value' line")
    judges = header.get("judges", 3)
    if isinstance(judges, str) and judges.isdigit():
        judges = int(judges)
    if not isinstance(judges, int) or isinstance(judges, bool) or not 1 <= judges <= MAX_JUDGES:
        raise RequestError(f"Invalid division: 'judges' must be a whole number from 1 to {MAX_JUDGES}")
    athletes = obj.get("athletes", [])
    if not isinstance(athletes, list) or not all(isinstance(a, str) and _NAME.match(a) for a in athletes):
        raise RequestError("Invalid division: 'athletes' must be a list of names")
    return obj


# -- REST answers (§7) ------------------------------------------------------------------


def score_answer(athlete: int, judge: int, score: float) -> dict[str, Any]:
    return {"athlete": athlete, "judge": judge + 1, "score": score}


def vote_answer(bracket: int, judge: int, vote: str) -> dict[str, Any]:
    return {"bracket": bracket, "judge": judge + 1, "vote": vote}


def tiebreaker_answer(athlete: int, judge: int, value: str | float) -> dict[str, Any]:
    return {"athlete": athlete, "judge": judge + 1, "tiebraker": value}  # sic: upstream's key


# -- WebSocket frames (§6) ----------------------------------------------------------------


def division_update(division: dict[str, Any], request: dict[str, Any]) -> bytes:
    """`{type: request.type, action: "update", digest, division, request}`: no time, no users."""
    return update_frame(request.get("type", "division"), "division", division, request)


def ring_update(ring: dict[str, Any], request: dict[str, Any]) -> bytes:
    return update_frame("ring", "ring", ring, request)


def ring_read(ring: dict[str, Any]) -> bytes:
    """The sender-only answer to `ring read`: no digest, no request."""
    return frame({"type": "ring", "action": "read", "ring": ring})


def error(message: str) -> bytes:
    return error_frame(message)


# -- server-sent events (§7.4) --------------------------------------------------------------


def numberize(value: Any) -> Any:
    """What the SSE CGI does to its JSON: every string value that looks like a number becomes one."""
    if isinstance(value, str):
        if _NUMERIC.match(value):
            return float(value) if "." in value else int(value)
        return value
    if isinstance(value, dict):
        return {k: numberize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numberize(v) for v in value]
    return value


def sse_data(ring: dict[str, Any]) -> str:
    """The event's data: the ring JSON, keys sorted, numeric-looking strings as numbers."""
    return canonical(numberize(ring))


def sse_event(event_id: int, data: str) -> bytes:
    """`id: <n>\\r\\ndata: <json>\\r\\n\\r\\n`; canonical JSON holds no newline, so one data line."""
    return f"id: {event_id}\r\ndata: {data}\r\n\r\n".encode()


def sse_error(message: str) -> str:
    return canonical({"error": message})


SSE_HEARTBEAT = b": heartbeat\r\n\r\n"
"""A comment line: keeps proxies and the browser's EventSource from timing the stream out."""


def parse_last_event_id(value: str | bytes | None) -> int | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())

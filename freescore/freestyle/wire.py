"""Freestyle frames (pure): what the freestyle pages send and expect, on the common FreeScore layer.

Routes, identifiers, request decoding and the update envelope are
`freescore.poomsae`'s. What is freestyle's own: its route and error prefix,
updates without `time`/`users` (upstream sends neither), reads echoing
`cookie:{}`, the judge's score object (component values as strings, deductions
as JS numbers) and the `write ok`/`write error`/`judges` replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from freescore.freestyle.scoring import PRESENTATION, STANCES, TECHNICAL
from freescore.poomsae import frames, requests, routes
from freescore.poomsae.ids import RequestError, Ring, check_divid, parse_ring

SERVICE = "freestyle"
ERROR_PREFIX = "FreeScore FreeStyle Service Error"
NOT_IN_RING = "Division not in ring"
"""The judge tablet matches this phrase to show that its ring has no such division."""
READS = ("division_read", "ring_read")
PUNITIVE = ("withdraw", "disqualify", "clear")
MAX_PENALTY = 100.0


def parse_route(path: str) -> routes.Route | None:
    """`/freestyle[/request]/<db>/<ring>/<role>` -> Route, or None (the upgrade is refused)."""
    return routes.parse_route(path, SERVICE)


SILENT = ("client_pong", "server_stop_ping")
"""Requests upstream leaves unanswered that a shared page may still send."""


def annotate(request: dict[str, Any], db: str) -> dict[str, Any]:
    """What upstream adds before echoing a request: `tournament`, and `cookie:{}` on reads."""
    request["tournament"] = db
    if requests.request_kind(request) in READS:
        request["cookie"] = {}
    return request


def decode(payload: bytes | str, db: str) -> dict[str, Any]:
    """One request frame, checked and annotated; RequestError for anything but `{type, action, ...}`."""
    return annotate(requests.decode_request(payload), db)


# -- request fields ---------------------------------------------------------------------

def _number(value: Any, field: str, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RequestError(f"Invalid {field} '{value}'")
    return requests.to_float(value, field, 0.0, hi)


def _group(score: dict[str, Any], key: str, components: tuple[str, ...]) -> None:
    group = score.get(key)
    if not isinstance(group, dict):
        raise RequestError(f"Invalid score: '{key}' must be an object")
    for name in components:
        if name in group and group[name] is not None:
            _number(group[name], f"{key}.{name}", 1.0)


def judge_score(request: dict[str, Any], judges: int) -> tuple[int, dict[str, Any]]:
    """`judge` (0 = referee) and its score, checked; the score is stored as sent."""
    judge = requests.to_int(requests.require(request, "judge"), "judge", 0, judges - 1)
    score = requests.require(request, "score", dict)
    _group(score, "technical", TECHNICAL)
    _group(score, "presentation", PRESENTATION)
    deductions = score.get("deductions", {})
    if not isinstance(deductions, dict):
        raise RequestError("Invalid score: 'deductions' must be an object")
    for name in ("major", "minor"):
        if deductions.get(name) is not None:
            _number(deductions[name], f"deductions.{name}", 10.0)
    stances = deductions.get("stances", {})
    if not isinstance(stances, dict) or any(not isinstance(stances.get(s, False), bool) for s in STANCES):
        raise RequestError("Invalid score: 'deductions.stances' must be booleans")
    return judge, score


def athlete_id(request: dict[str, Any], athletes: int) -> int:
    """An existing athlete's index (upstream would fall back to athlete 0 when it is missing)."""
    value = requests.require(request, "athlete_id")
    if athletes == 0:
        raise RequestError("Division has no athletes")
    return requests.to_int(value, "athlete_id", 0, athletes - 1)


def penalty(request: dict[str, Any]) -> dict[str, Any]:
    """An object of numeric values (bounds, timelimit, restart, misconduct, ...), each 0-100 or null."""
    value = requests.require(request, "penalty", dict)
    for key, v in value.items():
        if v is not None:
            _number(v, f"penalty.{key}", MAX_PENALTY)
    return value


def decision(request: dict[str, Any]) -> str:
    value = requests.require(request, "decision", str)
    if value not in PUNITIVE:
        raise RequestError(f"Invalid decision '{value}'")
    return value


@dataclass(frozen=True)
class Target:
    """`navigate`'s target: an athlete index, or a division id."""

    athlete: int | None = None
    divid: str | None = None


def target(request: dict[str, Any]) -> Target:
    value = requests.require(request, "target", dict)
    destination = value.get("destination")
    if destination == "athlete":
        return Target(athlete=requests.to_int(value.get("index"), "index", 0, 100000))
    if destination == "division":
        return Target(divid=check_divid(value.get("divid")))
    raise RequestError(f"Invalid destination '{destination}'")


def divid(request: dict[str, Any], field: str = "divid") -> str:
    return check_divid(requests.require(request, field), field)


def transfer(request: dict[str, Any]) -> tuple[str, Ring]:
    """`name` (the division) and `transfer` (a ring number or `staging`)."""
    return divid(request, "name"), parse_ring(requests.require(request, "transfer"), "transfer")


def names(request: dict[str, Any]) -> list[dict[str, Any]]:
    """`athletes:[{name, order?}]` of `edit athletes`/`filter athletes`: each with a string name."""
    athletes = requests.require(request, "athletes", list)
    for a in athletes:
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise RequestError("Invalid athletes: each needs a 'name'")
    return athletes


def edit_order(entry: dict[str, Any]) -> int | None:
    value = entry.get("order")
    try:
        return requests.to_int(value, "order") if value is not None else None
    except RequestError:
        return None


def written_division(request: dict[str, Any]) -> dict[str, Any]:
    """`division write`'s object: a safe `name` and a list of athletes."""
    division = requests.require(request, "division", dict)
    check_divid(division.get("name"), "name")
    athletes = division.get("athletes", [])
    if not isinstance(athletes, list) or not all(isinstance(a, dict) for a in athletes):
        raise RequestError("Invalid division: 'athletes' must be a list of objects")
    judges = division.get("judges", 5)
    if judges is not None:
        requests.to_int(judges, "judges", 1, 99)
    return division


# -- frames -----------------------------------------------------------------------------

def division_update(division: dict[str, Any], request: dict[str, Any]) -> bytes:
    """`{type, action:"update", digest, division, request}`; `type` is the request's (§6)."""
    return frames.update_frame(str(request.get("type", "division")), "division", division, request)


def ring_update(ring: dict[str, Any], request: dict[str, Any]) -> bytes:
    return frames.update_frame("ring", "ring", ring, request)


def write_ok(division: dict[str, Any], file: str) -> bytes:
    return frames.frame({"type": "division", "action": "write ok", "division": {**division, "file": file}})


def write_error(division: dict[str, Any], file: str) -> bytes:
    return frames.frame({"type": "division", "action": "write error", "error": f"File '{file}' exists.",
                         "division": {**division, "file": file}})


def judges_frame(judges: list[dict[str, Any]]) -> bytes:
    """`judge query`'s reply: the connections whose role is `judgeN` (upstream sends the number 0, §17.7)."""
    return frames.frame({"type": "division", "action": "judges", "judges": judges})


def error(message: str) -> bytes:
    """A change that failed: `{"error"}` alone, as upstream's handlers answer."""
    return frames.error_frame(message)


def not_in_ring(ring: Ring, divid: str | None) -> str:
    """Why a division cannot be found, worded as upstream's: the judge tablet matches the phrase."""
    return f"{NOT_IN_RING} {ring}: " + (f"'{divid}'" if divid else "no divisions")


def read_error(message: str, request: dict[str, Any]) -> bytes:
    """A read that failed, in upstream's shape: the message, a blank line, and the request (no `cookie`)."""
    echoed = {k: v for k, v in request.items() if k != "cookie"}
    return frames.error_frame(frames.processing_error(f"{message}.\n"), echoed)

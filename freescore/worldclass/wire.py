"""Worldclass frames (pure): what its pages send and expect, on top of the common FreeScore layer.

Routes, identifiers, request fields and frame envelopes are the common layer's
(`freescore.poomsae`; re-exported here so the rules read `wire.check_divid`);
what is worldclass's own is its route name, judges by URL role, the `time` and
`users` fields of its updates, the users and ping frames.
"""

from __future__ import annotations

import re
from typing import Any

from freescore.poomsae import frames, routes
from freescore.poomsae.frames import Update as Update
from freescore.poomsae.frames import canonical as canonical
from freescore.poomsae.frames import digest_of as digest_of
from freescore.poomsae.frames import error_frame as error_frame
from freescore.poomsae.frames import frame as frame
from freescore.poomsae.frames import utc_time as utc_time
from freescore.poomsae.ids import DIVID_RE as DIVID_RE
from freescore.poomsae.ids import RequestError as RequestError
from freescore.poomsae.ids import Ring as Ring
from freescore.poomsae.ids import check_db as check_db
from freescore.poomsae.ids import check_divid as check_divid
from freescore.poomsae.ids import group_id as group_id
from freescore.poomsae.ids import parse_ring as parse_ring
from freescore.poomsae.requests import decode_request as decode_request
from freescore.poomsae.requests import handler_name as handler_name
from freescore.poomsae.requests import request_kind as request_kind
from freescore.poomsae.requests import require as require
from freescore.poomsae.requests import to_bool as to_bool
from freescore.poomsae.requests import to_float as to_float
from freescore.poomsae.requests import to_int as to_int
from freescore.poomsae.routes import Route as Route
from freescore.poomsae.session import parse_php_session as parse_php_session
from freescore.poomsae.session import session_allows as session_allows
from freescore.poomsae.session import session_from_cookie as session_from_cookie
from freescore.poomsae.users import judge_number as judge_number
from freescore.poomsae.users import ping_frame as ping_frame
from freescore.poomsae.users import title_role as title_role
from freescore.poomsae.users import users_frame as users_frame

SERVICE = "worldclass"
SILENT = re.compile(r"^(schedule(_.*)?|register_device)$")


def parse_route(path: str) -> Route | None:
    """`/worldclass[/request]/<db>/<ring>/<role>` -> Route, or None (the upgrade is refused)."""
    return routes.parse_route(path, SERVICE)


def is_silent(request: dict[str, Any]) -> bool:
    """Requests upstream answers with nothing (schedule *, register device)."""
    return bool(SILENT.match(handler_name(request["action"])))


# -- frames --------------------------------------------------------------------

def update_frame(type_: str, key: str, payload: Any, request: Any, users: list[dict[str, Any]], now: str) -> bytes:
    """`{type, action:"update", digest, time, <key>, request, users}` with the payload encoded once."""
    return frames.update_frame(type_, key, payload, request, time=now, users=users)

"""Identifiers every FreeScore service accepts (pure): tournament `db`, ring, division id.

Anything a URL or a request names is checked here before it becomes part of a
path, so no later layer can be walked out of the data root. A refused value
raises `RequestError`, whose `message` goes back to the sender as `error`.
`UnknownRequest` and `SaveError` are the other ways a request can end.

    check_db("test") -> "test"             check_divid("p01") -> "p01"
    parse_ring("1") -> 1, parse_ring("staging") -> "staging"
    group_id("Test", 1) -> "test-ring01"   (the label upstream shows in pings)
"""

from __future__ import annotations

import re
from typing import Any

DB_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
DIVID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]{0,63}$")
RING_RE = re.compile(r"^[1-9][0-9]{0,2}$")
STAGING = "staging"

Ring = int | str
"""A ring number 1-999, or `"staging"` (divisions not assigned to a ring)."""


class RequestError(ValueError):
    """A request the service refuses; `message` goes back to the sender as `error`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def group_id(db: str, ring: Ring) -> str:
    return f"{db.lower()}-staging" if ring == STAGING else f"{db.lower()}-ring{int(ring):02d}"


def parse_ring(value: Any, field: str = "ring") -> Ring:
    """`staging` or a ring number 1-999 (int or decimal string without leading zero)."""
    if isinstance(value, bool):
        raise RequestError(f"Invalid {field} '{value}'")
    if value == STAGING:
        return STAGING
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


class UnknownRequest(Exception):
    """No handler for a request's `<type>_<action>`."""


class SaveError(Exception):
    """Writing a tournament's files failed (disk full, folder gone ...): the change is not saved."""

    def __init__(self, db: str, error: Exception) -> None:
        super().__init__(db, error)
        self.db = db
        self.error = error

    @property
    def message(self) -> str:
        """For the requester's error frame: the tournament and the OS reason, no paths."""
        reason = getattr(self.error, "strerror", None) or type(self.error).__name__
        return f"could not save the changes to tournament '{self.db}': {reason}"

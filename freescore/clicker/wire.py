"""Clicker wire format: one space-separated text command per frame, sans I/O.

`parse` turns a frame's text into a typed command or raises `IgnoredInput`
(the protocol answers bad input with silence, so the adapter just drops it).
The `format_*` functions build the reply and broadcast lines.

Integers are parsed the way JavaScript's `parseInt(tok, 10)` does and kept as
canonical decimal strings, so arbitrarily large values are echoed exactly
(Python's `int()` refuses more than 4300 digits, a 64 KiB line can hold more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

DRAFT_1 = 1
"""`LISTEN` receivers; relays read `SCORE <timestamp> <id> <score>`."""
DRAFT_2 = 2
"""`SUBSCRIBE` receivers; relays read `SCORE <timestamp> <score> <id>`."""

CONNECT_IDS_PER_LINE = 16
"""16 six-digit ids keep a `CONNECT` line under 125 bytes (one-byte length frame)."""

# ECMAScript StrWhiteSpaceChar: what parseInt skips before the sign.
_JS_SPACE = frozenset(
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DIGITS = frozenset("0123456789")


class IgnoredInput(ValueError):
    """A frame that is no valid command; the protocol ignores it without a reply."""


@dataclass(frozen=True, slots=True)
class Register:
    secret: str
    """The presented secret, "" when none was given."""


class Score(NamedTuple):
    """A tuple, not a frozen dataclass: one is made per SCORE, and a frozen dataclass's
    `__init__` (an `object.__setattr__` per field) costs about ten times a tuple's."""

    msg_id: str | None
    """None for the legacy draft-1 form `SCORE <timestamp> <score>`."""
    timestamp: str
    score: str


@dataclass(frozen=True, slots=True)
class Listen:
    ids: tuple[str, ...]
    dialect: int
    """DRAFT_2 for `SUBSCRIBE`, DRAFT_1 for `LISTEN`."""


Command = Register | Score | Listen


def parse_int(token: str) -> str | None:
    """JavaScript `parseInt(token, 10)` as a canonical decimal string, or None (NaN)."""
    if token.isascii() and token.isdigit():  # the common case: plain digits
        return token.lstrip("0") or "0"
    i, n = 0, len(token)
    while i < n and token[i] in _JS_SPACE:
        i += 1
    negative = False
    if i < n and token[i] in "+-":
        negative = token[i] == "-"
        i += 1
    start = i
    while i < n and token[i] in _DIGITS:
        i += 1
    if i == start:
        return None
    digits = token[start:i].lstrip("0") or "0"
    return "-" + digits if negative and digits != "0" else digits


def int_key(value: str) -> tuple[int, int, str]:
    """Sort key giving numeric order of canonical decimal strings of any size."""
    if value.startswith("-"):
        digits = value[1:]
        # Larger magnitude is smaller; invert by negating length and complementing digits.
        return (-1, -len(digits), digits.translate(_COMPLEMENT))
    return (1, len(value), value)


_COMPLEMENT = str.maketrans("0123456789", "9876543210")


def split_ids(tokens: list[str], limit: int) -> tuple[str, ...]:
    """Ids from space- and comma-separated tokens: empties dropped, deduplicated, order kept."""
    seen: dict[str, None] = {}
    for token in tokens:
        for piece in token.split(","):
            if piece and piece not in seen:
                if len(seen) >= limit:
                    return tuple(seen)
                seen[piece] = None
    return tuple(seen)


_new_score = tuple.__new__


def parse(text: str, max_ids: int = 64) -> Command:
    """Parse one frame's text; raise IgnoredInput for anything the protocol ignores."""
    tokens = text.split(" ")
    if len(tokens) == 4 and tokens[0] == "SCORE" and text.isascii():
        # What every device sends, `SCORE <msgId> <timestamp> <score>` in plain digits, without
        # the four calls of the general path (the same result). A line end fails `isdigit`:
        # the general path strips it, so a SCORE pays no `rstrip`.
        _, msg_id, timestamp, score = tokens
        if msg_id.isdigit() and timestamp.isdigit() and score.isdigit():
            canonical = (msg_id.lstrip("0") or "0", timestamp.lstrip("0") or "0", score.lstrip("0") or "0")
            return _new_score(Score, canonical)
    tokens = text.rstrip("\r\n").split(" ")
    verb = tokens[0].upper()
    if verb == "SCORE":
        return _parse_score(tokens)
    if verb == "REGISTER":
        return Register(tokens[1] if len(tokens) > 1 else "")
    if verb == "SUBSCRIBE":
        return Listen(split_ids(tokens[1:], max_ids), DRAFT_2)
    if verb == "LISTEN":
        return Listen(split_ids(tokens[1:], max_ids), DRAFT_1)
    raise IgnoredInput(f"unknown verb {verb[:16]!r}")


def _parse_score(tokens: list[str]) -> Score:
    count = len(tokens) - 1
    if count < 2:
        raise IgnoredInput("SCORE needs at least two arguments")
    first = parse_int(tokens[1])
    second = parse_int(tokens[2])
    if first is None or second is None:
        raise IgnoredInput("SCORE argument is not an integer")
    if count == 2:
        return Score(None, first, second)
    third = parse_int(tokens[3])
    if third is None:
        raise IgnoredInput("SCORE third argument is not an integer")
    return Score(first, second, third)


def format_registered(device_id: str, secret: str) -> str:
    return f"REGISTERED {device_id} {secret}"


def format_scored(score: Score) -> str:
    if score.msg_id is None:
        return f"SCORED {score.timestamp}"
    return f"SCORED {score.msg_id} {score.timestamp}"


def format_connect_reply(connected: list[str] | tuple[str, ...]) -> list[str]:
    """The `CONNECT` reply: bare when none are connected, else lines of at most 16 ids."""
    if not connected:
        return ["CONNECT"]
    return [
        "CONNECT " + " ".join(connected[i : i + CONNECT_IDS_PER_LINE])
        for i in range(0, len(connected), CONNECT_IDS_PER_LINE)
    ]


def format_connect(device_id: str) -> str:
    return f"CONNECT {device_id}"


def format_disconnect(device_id: str) -> str:
    return f"DISCONNECT {device_id}"


def format_relay(dialect: int, device_id: str, timestamp: str, score: str) -> str:
    if dialect == DRAFT_1:
        return f"SCORE {timestamp} {device_id} {score}"
    return f"SCORE {timestamp} {score} {device_id}"

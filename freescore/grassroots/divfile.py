"""The grassroots division file (`div.<divid>.txt`), read and written exactly (spec §10).

The file is the real interface: the SSE CGI, the report CGIs and the PHP
editor read it, so athlete lines keep upstream's column rules. Two upstream
defects are not copied: tiebreaker columns are read positionally (upstream
piles them into slot 0), and a cleared score is written as `-` (upstream
writes `-1`, which its own reader skips, shifting later columns). Unknown
header keys survive a round trip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from freescore.poomsae.frames import canonical
from freescore.poomsae.progress import HEADER_LINE
from freescore.wireformat import MAX_DEPTH, loads_strict

MAX_JUDGES = 15
"""The most judges a division file may name; a larger `judges` reads as this."""

Mark = float | None
"""A judge's score or tiebreaker: a number, or None for `-` (no mark)."""

DEFAULT_PLACES: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (3, 2))
DECISIONS = ("DSQ", "WDR")
_MARK = re.compile(r"^(-|\d+|\d+\.\d+|r)$")
_WORD = re.compile(r"^\w")
COMPUTED = ("tied", "placements", "pending")
"""Header keys the replacement recomputes on every read, so their file values are only advice."""


@dataclass
class Athlete:
    name: str
    rank: str = ""
    scores: list[Mark] = field(default_factory=list)
    tiebreakers: list[Mark] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def decision(self) -> str | None:
        value = self.info.get("decision")
        return value if value in DECISIONS else None


@dataclass
class Division:
    """One division file, typed. Derived values (placements, ties) are `scoring`'s."""

    name: str
    state: str = "score"
    current: int = 0
    round: str = "fin"
    judges: int = 3
    description: str | None = None
    mode: str = ""
    poolsize: int = 0
    places: list[tuple[int, int]] = field(default_factory=lambda: list(DEFAULT_PLACES))
    brackets: Any = None
    extra: dict[str, str] = field(default_factory=dict)
    athletes: list[Athlete] = field(default_factory=list)
    tied: list[tuple[int, list[int]]] = field(default_factory=list)
    placements: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)

    @property
    def single_elimination(self) -> bool:
        return self.mode == "single-elimination"

    def pad(self) -> None:
        """Every athlete has exactly `judges` score and tiebreaker slots."""
        for a in self.athletes:
            for marks in (a.scores, a.tiebreakers):
                del marks[self.judges:]
                marks.extend([None] * (self.judges - len(marks)))


def perl_number(x: float) -> str:
    """A mark as Perl prints it after rounding to 1 decimal: `8.3`, `8`, `-1`."""
    text = f"{round(x, 1):.15g}"
    return "0" if text == "-0" else text


def _int(text: str, default: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default


def parse_places(text: str) -> list[tuple[int, int]]:
    """`1:1,2:1,3:2` -> [(place, medals)]; unreadable entries are skipped."""
    out = []
    for item in text.split(","):
        place, _, medals = item.partition(":")
        if place.strip().isdigit() and medals.strip().isdigit():
            out.append((int(place), int(medals)))
    return out


def format_places(places: list[tuple[int, int]]) -> str:
    return ",".join(f"{p}:{m}" for p, m in places)


def _info_value(text: str) -> Any:
    if text[:1] in ("[", "{"):
        try:
            return loads_strict(text, max_depth=MAX_DEPTH)  # as the pages read it: no NaN, 1e999
        except ValueError:
            return text
    return text


def parse_athlete(line: str, judges: int) -> Athlete:
    """One athlete line with upstream's column rules (§10), tiebreakers read positionally."""
    name, *columns = line.split("\t")
    athlete = Athlete(name=name)
    marks: list[Mark] = []
    for i, col in enumerate(columns):
        if col == "" or (i == 0 and _WORD.match(col)):
            athlete.rank = col
        elif "=" in col:
            key, _, value = col.partition("=")
            athlete.info[key] = _info_value(value)
        elif _MARK.match(col):
            marks.append(None if col in ("-", "r") else float(col))
    athlete.scores = marks[:judges]
    athlete.tiebreakers = marks[judges:2 * judges]
    return athlete


def apply_header(div: Division, header: dict[str, str]) -> None:
    """Set the division's header values from `# key=value` texts (a file's, or the editor's POST)."""
    for key, value in header.items():
        if key == "state":
            div.state = value or "score"
        elif key == "current":
            div.current = max(0, _int(value, 0))
        elif key == "round":
            div.round = value or "fin"
        elif key == "judges":
            div.judges = min(max(_int(value, 3), 1), MAX_JUDGES)
        elif key == "description":
            div.description = value
        elif key == "mode":
            div.mode = value
        elif key == "poolsize":
            div.poolsize = max(0, _int(value, 0))
        elif key == "places":
            div.places = parse_places(value)
        elif key == "brackets":
            try:
                div.brackets = loads_strict(value, max_depth=MAX_DEPTH) if value else None
            except ValueError:
                div.brackets = None
        elif key not in COMPUTED:
            div.extra[key] = value


def parse_division(text: str, name: str) -> Division:
    """A division from its file text; headers may sit anywhere, blank lines are ignored."""
    header: dict[str, str] = {}
    lines: list[str] = []
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if line.startswith("#"):
            m = HEADER_LINE.match(line)
            if m:
                header[m.group(1).strip()] = m.group(2)
        elif line.strip():
            lines.append(line)
    div = Division(name=name)
    apply_header(div, header)
    div.athletes = [parse_athlete(line, div.judges) for line in lines]
    div.pad()
    return div


def _info_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return canonical(value)
    return str(value)


def format_athlete(a: Athlete, judges: int) -> str:
    scores = ["-" if s is None or s <= 0 else perl_number(s) for s in a.scores[:judges]]
    scores += ["-"] * (judges - len(scores))
    ties = ["-" if t is None or t < 0 else perl_number(t) for t in a.tiebreakers[:judges]]
    ties += ["-"] * (judges - len(ties))
    info = [f"{k}={_info_text(a.info[k])}" for k in sorted(a.info)]
    return "\t".join([a.name, a.rank, *scores, *ties, *info])


def format_division(div: Division) -> str:
    """The exact text of §10: headers in upstream's order, then one line per athlete."""
    out = [f"# state={div.state}", f"# current={div.current}", f"# round={div.round}"]
    if div.poolsize:
        out.append(f"# poolsize={div.poolsize}")
    out.append(f"# judges={div.judges}")
    if div.description is not None:
        out.append(f"# description={div.description}")
    if div.mode:
        out.append(f"# mode={div.mode}")
    out.append(f"# places={format_places(div.places)}")
    if div.tied:
        out.append("# tied=" + ";".join(f"{p}:{','.join(map(str, ids))}" for p, ids in div.tied))
    if div.placements:
        out.append("# placements=" + ",".join(map(str, div.placements)))
    if div.pending:
        out.append("# pending=" + ",".join(map(str, div.pending)))
    if div.brackets is not None:
        out.append("# brackets=" + canonical(div.brackets))
    out += [f"# {k}={v}" for k, v in div.extra.items()]
    out += [format_athlete(a, div.judges) for a in div.athletes]
    return "\n".join(out) + "\n"

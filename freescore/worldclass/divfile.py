"""The upstream FreeScore division file and progress.txt formats (pure).

Perl CGI reports and PHP REST pages read these files too, so the layout is
exact (spec §10): header lines `# key=value` in a fixed order, one block per
round, athlete lines, then TAB-led score lines. Parsing keeps unknown header
keys and athlete info verbatim so a load/save round trip loses nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from freescore.poomsae.frames import canonical as canonical_json
from freescore.poomsae.progress import HEADER_LINE
from freescore.poomsae.progress import format_progress as format_progress
from freescore.poomsae.progress import parse_progress as parse_progress
from freescore.wireformat import MAX_DEPTH, loads_strict
from freescore.worldclass import bracket

ROUND_ORDER = ("prelim", "ro256", "ro128", "ro64", "ro32", "semfin", "ro16", "finals", "ro8", "ro4", "ro2")
SEPARATOR = "# " + "-" * 60
SCORE_KEYS = ("major", "minor", "rhythm", "power", "ki")
PENALTY_KEYS = ("bounds", "timelimit", "restart", "misconduct", "time")
DECISIONS = ("disqualify", "withdraw")
KNOWN_HEADER = (
    "state", "current", "form", "round", "judges", "autopilot", "method", "matches",
    "description", "forms", "draws", "placement", "flight", "tags",
)
_ROUND_MATCH = re.compile(r"^(" + "|".join(ROUND_ORDER) + r")(?:m(\d+))?$")


class DivisionFormatError(ValueError):
    """A division file that cannot be read (names the line)."""


@dataclass
class Score:
    """One judge's marks; all zero means the slot holds no score."""

    major: float = 0.0
    minor: float = 0.0
    rhythm: float = 0.0
    power: float = 0.0
    ki: float = 0.0

    def values(self) -> tuple[float, float, float, float, float]:
        return (self.major, self.minor, self.rhythm, self.power, self.ki)

    @property
    def started(self) -> bool:
        return bool(self.major or self.minor or self.rhythm or self.power or self.ki)


@dataclass
class FormScore:
    """One athlete's form: a slot per judge, optional penalties and decisions."""

    judges: list[Score] = field(default_factory=list)
    penalty: dict[str, float] | None = None
    decision: dict[str, int] = field(default_factory=dict)

    def has_data(self) -> bool:
        return bool(self.decision) or self.penalty is not None or any(s.started for s in self.judges)


@dataclass
class Athlete:
    name: str
    info: dict[str, str] = field(default_factory=dict)
    scores: dict[str, list[FormScore]] = field(default_factory=dict)


@dataclass
class Division:
    """What one `div.<divid>.txt` holds, typed; derived results live in scoring."""

    name: str
    description: str = ""
    state: str = "score"
    current: int = 0
    form: int = 0
    round: str = "finals"
    judges: int = 5
    autopilot: str | None = None
    method: Any = "cutoff"
    matches: Any = None
    forms: dict[str, list[str]] = field(default_factory=dict)
    draws: Any = None
    placement: dict[str, list[int]] = field(default_factory=dict)
    flight: dict[str, Any] | None = None
    tags: Any = None
    extra: dict[str, str] = field(default_factory=dict)
    athletes: list[Athlete] = field(default_factory=list)
    order: dict[str, list[int]] = field(default_factory=dict)

    def rounds(self) -> list[str]:
        """The division's rounds in competition order (those with forms or athletes).

        With brackets (se/sbs/combination) they are the method's rounds from the first with athletes.
        """
        if bracket.uses_brackets(self.method):
            return bracket.round_list(self.method, self.order) or [
                r for r in bracket.candidate_rounds(self.method) if r in self.forms]
        return [r for r in ROUND_ORDER if r in self.forms or self.order.get(r)]

    def form_count(self, round_: str) -> int:
        return max(1, len(self.forms.get(round_, [])))

    def form_scores(self, athlete: int, round_: str) -> list[FormScore]:
        """The athlete's forms for a round, created and padded on demand."""
        forms = self.athletes[athlete].scores.setdefault(round_, [])
        while len(forms) < self.form_count(round_):
            forms.append(FormScore())
        for f in forms:
            while len(f.judges) < self.judges:
                f.judges.append(Score())
        return forms


def _num(text: str, where: str) -> float:
    text = text.strip()
    if text == "":
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise DivisionFormatError(f"{where}: not a number: {text!r}") from None


def _int(text: str, key: str) -> int:
    try:
        return int(text.strip() or 0)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            raise DivisionFormatError(f"header {key}: not an integer: {text!r}") from None


def _json(text: str, key: str) -> Any:
    try:
        return loads_strict(text, max_depth=MAX_DEPTH)  # as the pages read it: no NaN, 1e999
    except ValueError:
        raise DivisionFormatError(f"header {key}: not JSON: {text!r}") from None


def parse_forms(text: str) -> dict[str, list[str]]:
    forms: dict[str, list[str]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        round_, _, names = part.partition(":")
        forms[round_.strip()] = [n.strip() for n in names.split(",") if n.strip()]
    return forms


def format_forms(forms: dict[str, list[str]]) -> str:
    return ";".join(f"{r}:{','.join(names)}" for r, names in forms.items())


def parse_flight(text: str) -> dict[str, Any]:
    flight: dict[str, Any] = {}
    for part in text.split(";"):
        key, _, value = part.partition(":")
        key = key.strip()
        if not key:
            continue
        flight[key] = [v for v in value.split(",") if v] if key == "group" else value
    return flight


def format_flight(flight: dict[str, Any]) -> str:
    parts = []
    for key, value in flight.items():
        parts.append(f"{key}:{','.join(value) if isinstance(value, list) else value}")
    return ";".join(parts)


def parse_division(text: str, name: str) -> Division:
    """Read a division file; raises DivisionFormatError on an integrity problem."""
    div = Division(name=name)
    seen: set[str] = set()
    by_name: dict[str, int] = {}
    block: str | None = None
    last: int | None = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            continue
        where = f"line {lineno}"
        if line.startswith("#"):
            m = HEADER_LINE.match(line)
            if m and block is None:
                _header(div, m.group(1).strip(), m.group(2), seen)
                continue
            if m is None:
                words = line[1:].strip()
                if words in ROUND_ORDER:
                    block = words
                    div.order.setdefault(block, [])
                    last = None
            continue
        if line.startswith("\t"):
            if last is None or block is None:
                raise DivisionFormatError(f"{where}: score line before any athlete")
            _score_line(div, last, block, line, where)
            continue
        if block is None:
            raise DivisionFormatError(f"{where}: athlete line before any round block")
        if "judges" not in seen or "forms" not in seen:
            raise DivisionFormatError(f"{where}: 'judges' and 'forms' must precede the athletes")
        fields = line.split("\t")
        athlete_name = fields[0]
        info: dict[str, str] = {}
        for f in fields[1:]:
            if not f:
                continue
            key, sep, value = f.partition("=")
            info[key] = value if sep else ""
        idx = by_name.get(athlete_name)
        if idx is None:
            idx = len(div.athletes)
            by_name[athlete_name] = idx
            div.athletes.append(Athlete(name=athlete_name, info=info))
        else:
            div.athletes[idx].info.update(info)
        div.order[block].append(idx)
        last = idx
    for key in ("current", "form", "round", "judges", "description", "forms"):
        if key not in seen:
            raise DivisionFormatError(f"header '{key}' is missing")
    if isinstance(div.method, dict) and any(div.order.values()) and not bracket.round_list(div.method, div.order):
        # upstream makes a nonsense round list of it (quirk 13): the file is refused instead
        raise DivisionFormatError("no first round: the method names no round with athletes")
    pad(div)
    return div


def pad(div: Division) -> None:
    """Give every athlete of every round a slot per form and judge (the shape freescore keeps)."""
    for round_, order in div.order.items():
        for a in order:
            div.form_scores(a, round_)


def _header(div: Division, key: str, value: str, seen: set[str]) -> None:
    seen.add(key)
    if key == "state":
        div.state = value
    elif key == "current":
        div.current = _int(value, key)
    elif key == "form":
        div.form = _int(value, key)
    elif key == "round":
        div.round = value
    elif key == "judges":
        div.judges = _int(value, key)
        if not 1 <= div.judges <= 15:
            raise DivisionFormatError(f"header judges: {value!r} out of range")
    elif key == "autopilot":
        div.autopilot = value
    elif key == "method":
        div.method = _json(value, key) if value.startswith(("{", "[")) else value
    elif key == "matches":
        div.matches = _json(value, key)
    elif key == "description":
        div.description = value
    elif key == "forms":
        div.forms = parse_forms(value)
    elif key == "draws":
        div.draws = _json(value, key) or None  # an empty draws line is not written back
    elif key == "placement":
        placement = _json(value, key)
        if not isinstance(placement, dict):
            raise DivisionFormatError("header placement: not a JSON object")
        div.placement = placement
    elif key == "flight":
        div.flight = parse_flight(value)
    elif key == "tags":
        div.tags = _json(value, key)
    else:
        div.extra[key] = value


def _score_line(div: Division, athlete: int, block: str, line: str, where: str) -> None:
    fields = line.split("\t")[1:]
    if len(fields) < 3:
        raise DivisionFormatError(f"{where}: short score line")
    round_code, form_id, kind, values = fields[0], fields[1], fields[2], fields[3:]
    m = _ROUND_MATCH.match(round_code)
    if m is None or m.group(1) != block:
        raise DivisionFormatError(f"{where}: score line for round {round_code!r} in block {block!r}")
    if not re.fullmatch(r"f[1-9]\d?", form_id):
        raise DivisionFormatError(f"{where}: bad form id {form_id!r}")
    k = int(form_id[1:]) - 1
    forms = div.athletes[athlete].scores.setdefault(block, [])
    while len(forms) <= k:
        forms.append(FormScore())
    form = forms[k]
    if kind == "s":
        for v in values:
            key, _, flag = v.partition("=")
            if key in DECISIONS and flag.strip() not in ("", "0"):
                form.decision[key] = 1
    elif kind == "p":
        nums = [_num(v, where) for v in values[:5]]
        if len(nums) < 3:
            raise DivisionFormatError(f"{where}: a penalty line needs 3 to 5 values")
        nums += [0.0] * (5 - len(nums))
        form.penalty = dict(zip(PENALTY_KEYS, nums, strict=True))
    elif kind == "r" or re.fullmatch(r"j\d{1,2}", kind):
        j = 0 if kind == "r" else int(kind[1:])
        nums = [_num(v, where) for v in values[:5]]
        nums += [0.0] * (5 - len(nums))
        while len(form.judges) <= j:
            form.judges.append(Score())
        form.judges[j] = Score(*nums)
    else:
        raise DivisionFormatError(f"{where}: unknown score line kind {kind!r}")


def _f1(x: float) -> str:
    return f"{x:.1f}"


def format_division(div: Division) -> str:
    """The exact upstream text of a division (spec §10)."""
    out: list[str] = [
        f"# state={div.state}",
        f"# current={div.current}",
        f"# form={div.form}",
        f"# round={div.round}",
        f"# judges={div.judges}",
    ]
    if div.autopilot is not None:
        out.append(f"# autopilot={div.autopilot}")
    if div.method != "cutoff":
        out.append(f"# method={canonical_json(div.method) if isinstance(div.method, dict) else div.method}")
    if div.matches is not None:
        out.append(f"# matches={canonical_json(div.matches)}")
    out.append(f"# description={div.description}")
    out.append(f"# forms={format_forms(div.forms)}")
    if div.draws:
        out.append(f"# draws={canonical_json(div.draws)}")
    if div.placement:
        out.append(f"# placement={canonical_json(div.placement)}")
    if div.flight is not None:
        out.append(f"# flight={format_flight(div.flight)}")
    if div.tags is not None:
        out.append(f"# tags={canonical_json(div.tags)}")
    for key in sorted(div.extra):
        out.append(f"# {key}={div.extra[key]}")
    for round_ in ROUND_ORDER:
        order = div.order.get(round_)
        if not order:
            continue
        out += [SEPARATOR, f"# {round_}", SEPARATOR]
        for idx in order:
            athlete = div.athletes[idx]
            out.append("\t".join([athlete.name, *(f"{k}={athlete.info[k]}" for k in sorted(athlete.info))]))
            for k, form in enumerate(athlete.scores.get(round_, [])):
                if not form.has_data() and not bracket.is_bracket_round(div.method, round_):
                    continue  # bracket rounds write every form, empty ones as 0.0 lines (as upstream)
                fid = f"f{k + 1}"
                for decision in sorted(form.decision):
                    out.append(f"\t{round_}\t{fid}\ts\t{decision}=1")
                if form.penalty is not None and any(form.penalty.get(p, 0) for p in PENALTY_KEYS):
                    out.append("\t".join(["", round_, fid, "p", *(_f1(form.penalty.get(p, 0)) for p in PENALTY_KEYS)]))
                for j in range(max(div.judges, len(form.judges))):
                    s = form.judges[j] if j < len(form.judges) else Score()
                    label = "r" if j == 0 else f"j{j}"
                    out.append("\t".join(["", round_, fid, label, *(_f1(v) for v in s.values())]))
    return "\n".join(out) + "\n"

"""Single elimination (`se`) and side-by-side (`sbs`) rules (pure, methods addendum §1-§7).

Everything here works on plain values (athlete indices, match dicts, predicates) so it can
be tested without files or a reactor: the round table, seeding with byes to the top seeds,
match building, winners, win-count placements, bracket navigation, the display cycle,
autopilot step selection and the poomsae draw. `scoring` applies these rules to a Division.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Slot = int | None
Match = dict[str, Any]

#: code -> (name, matches, min athletes, max athletes)
ROUND_TABLE: dict[str, tuple[str, int, int, int]] = {
    "ro256": ("Round of 256", 128, 129, 256),
    "ro128": ("Round of 128", 64, 65, 128),
    "ro64": ("Round of 64", 32, 33, 64),
    "ro32": ("Round of 32", 16, 17, 32),
    "ro16": ("Round of 16", 8, 9, 16),
    "ro8": ("Quarterfinals", 4, 5, 8),
    "ro4": ("Semifinals", 2, 3, 4),
    "ro2": ("Finals", 1, 1, 2),
}
BRACKET_ROUNDS = tuple(ROUND_TABLE)
GLOBAL_ORDER = ("prelim", "ro256", "ro128", "ro64", "ro32", "semfin", "ro16", "finals", "ro8", "ro4", "ro2")
BRACKET_METHODS = ("se", "sbs")
MIN_SCORE = (0.0, 4.0, 0.5, 0.5, 0.5)  # major, minor, rhythm, power, ki: accuracy 0, presentation 1.5
AGE_POOLS = ("yellow", "green", "blue", "red", "dragon", "tiger", "youth", "cadet", "junior",
             "u30", "u40", "u50", "u60", "u65", "o65")
_CUSTOM_POOL = re.compile(r"^wt25-0x[0-9a-fA-F]{5}$")


class BracketError(ValueError):
    """A request or file the bracket rules refuse; the text is what upstream's error frame says."""


# -- methods and rounds -------------------------------------------------------------

def round_method(method: Any, round_: str) -> str:
    """The method of one round; a round missing from a combination map is cutoff."""
    if isinstance(method, dict):
        value = method.get(round_, "cutoff")
    else:
        value = method
    return value if value in BRACKET_METHODS else "cutoff"


def is_bracket_round(method: Any, round_: str) -> bool:
    return round_ in ROUND_TABLE and round_method(method, round_) in BRACKET_METHODS


def uses_brackets(method: Any) -> bool:
    if isinstance(method, dict):
        return any(is_bracket_round(method, r) for r in method)
    return method in BRACKET_METHODS


def candidate_rounds(method: Any) -> list[str]:
    if isinstance(method, dict):
        return [r for r in GLOBAL_ORDER if r in method]
    return list(BRACKET_ROUNDS)


def round_list(method: Any, order: dict[str, Sequence[Slot]]) -> list[str]:
    """The division's rounds: the candidates from the first with a non-empty order to the end."""
    candidates = candidate_rounds(method)
    for i, r in enumerate(candidates):
        if order.get(r):
            return candidates[i:]
    return []


def first_round(athletes: int) -> str:
    """ro<2^d>, d = ceil(log2 n) and at least 1: 1-2 -> ro2, 3-4 -> ro4, 5-8 -> ro8 ..."""
    d = max(1, math.ceil(math.log2(athletes))) if athletes > 0 else 1
    code = f"ro{2 ** d}"
    if code not in ROUND_TABLE:
        raise BracketError(f"Database error: {athletes} athletes unsuitable for single elimination "
                           "(required range: 1 to 256 athletes)")
    return code


def check_size(divid: str, round_: str, entries: int) -> None:
    _, _, lo, hi = ROUND_TABLE[round_]
    if not lo <= entries <= hi:
        raise BracketError(f"Database error: {divid} {entries} athletes unsuitable for round '{round_}' "
                           f"(required range: {lo} to {hi} athletes)")


# -- matches ------------------------------------------------------------------------

def build_matches(order: Sequence[Slot], round_: str) -> list[Match]:
    """Seed i meets seed max-1-i; seeds past the end of the order are byes (top seeds get them)."""
    _, count, _, most = ROUND_TABLE[round_]
    k = len(order) - 1
    matches: list[Match] = []
    for i in range(count):
        j = most - 1 - i
        if i > j:
            break
        chung = order[i] if i <= k else None
        hong = order[j] if j <= k else None
        matches.append({"chung": chung, "hong": hong, "number": i + 1, "order": [chung, hong]})
    return matches


def well_formed(matches: Any, round_: str, athletes: int) -> bool:
    """Whether a cached round (from a file's `# matches=` or the editor) is a bracket this division can use."""
    if not isinstance(matches, list) or not matches or len(matches) > ROUND_TABLE[round_][1]:
        return False
    for m in matches:
        if not isinstance(m, dict) or not isinstance(m.get("number"), int):
            return False
        for side in ("chung", "hong"):
            a = m.get(side)
            if a is not None and (not isinstance(a, int) or isinstance(a, bool) or not 0 <= a < athletes):
                return False
        if m.get("order") != [m.get("chung"), m.get("hong")]:
            return False
        w = m.get("winner")
        if w is not None and w not in (m.get("chung"), m.get("hong")):
            return False
    return True


def without_athlete(matches: dict[str, Any], idx: int) -> dict[str, Any]:
    """Cached brackets after athlete `idx` is deleted: its slots become byes, later indices shift down."""
    def slot(a: Any) -> Any:
        if not isinstance(a, int) or a == idx:
            return None
        return a - 1 if a > idx else a

    out: dict[str, Any] = {}
    for round_, ms in matches.items():
        if not isinstance(ms, list):
            continue
        out[round_] = []
        for m in ms:
            if not isinstance(m, dict):
                continue
            n = dict(m, chung=slot(m.get("chung")), hong=slot(m.get("hong")))
            n["order"] = [n["chung"], n["hong"]]
            if "winner" in m:
                if m["winner"] == idx:
                    del n["winner"]
                else:
                    n["winner"] = slot(m["winner"])
            out[round_].append(n)
    return out


def present(match: Match) -> list[int]:
    return [a for a in (match.get("chung"), match.get("hong")) if a is not None]


def athletes_of(matches: Sequence[Match]) -> list[int]:
    return [a for m in matches for a in present(m)]


class Ranked(Protocol):
    """An athlete's round result as far as a match needs it (scoring.RoundResult)."""

    complete: bool
    decision: str | None

    def rank_key(self) -> Any: ...


def decide(match: Match, results: Mapping[int, Ranked]) -> tuple[bool, Slot]:
    """(complete, winner) of a match: the present athletes must all be complete.

    A lone athlete wins even with a decision; two with decisions: nobody; otherwise the better
    ranking wins and a perfect tie keeps the input order, so chung wins it (as upstream).
    """
    athletes = present(match)
    if not all(a in results and results[a].complete for a in athletes):
        return False, None
    if not athletes:
        return True, None
    if len(athletes) == 1:
        return True, athletes[0]
    if all(results[a].decision for a in athletes):
        return True, None
    return True, sorted(athletes, key=lambda a: results[a].rank_key())[0]


def winners_in_order(matches: Sequence[Match]) -> list[Slot]:
    return [m.get("winner") for m in matches]


def placement_groups(rounds: Sequence[str], matches: dict[str, list[Match]], names: Sequence[str]
                     ) -> dict[str, list[list[int]]]:
    """Win-count groups after each complete round, most wins first, each group by name.

    `rounds` are the bracket rounds up to the current one in order; a round counts once
    every match of it carries a `winner` key (a bye counts as a match won).
    """
    placement: dict[str, list[list[int]]] = {}
    if not rounds:
        return placement
    wins = dict.fromkeys(athletes_of(matches.get(rounds[0], [])), 0)
    for r in rounds:
        ms = matches.get(r) or []
        if not ms or not all("winner" in m for m in ms):
            break
        for m in ms:
            if m["winner"] is not None:
                wins[m["winner"]] = wins.get(m["winner"], 0) + 1
        most = max(wins.values(), default=0)
        placement[r] = [sorted((a for a, w in wins.items() if w == n), key=lambda a: names[a])
                        for n in range(most, -1, -1)]
    return placement


# -- navigation ---------------------------------------------------------------------

def current_match(matches: Sequence[Match], current: int, round_: str) -> Match:
    for m in matches:
        if current in m.get("order", []):
            return m
    raise BracketError(f"Matches: No match found with athlete ID {current} in round {round_}")


def first_athlete(matches: Sequence[Match]) -> int | None:
    for m in matches:
        if present(m):
            return present(m)[0]
    return None


def last_athlete(matches: Sequence[Match]) -> int | None:
    for m in reversed(matches):
        if present(m):
            return present(m)[-1]
    return None


def athlete_next(matches: Sequence[Match], current: int, round_: str, match_complete: bool,
                 round_athletes: Sequence[int]) -> int:
    """The other contestant of an incomplete two-athlete match, else the next match's first.

    At the last match upstream lands on athlete 0 when it is in the round, else on the round's
    last athlete; kept so the division file after the move is the one upstream writes.
    """
    m = current_match(matches, current, round_)
    athletes = present(m)
    if len(athletes) == 2 and not match_complete:
        return athletes[1] if current == athletes[0] else athletes[0]
    i = list(matches).index(m)
    nxt = first_athlete(matches[i + 1:])
    if nxt is not None:
        return nxt
    if 0 in round_athletes:
        return 0
    return round_athletes[-1] if round_athletes else current


def athlete_prev(matches: Sequence[Match], current: int, round_: str) -> int:
    """Hong -> chung of a two-athlete match, else the previous match's last athlete (or stay)."""
    m = current_match(matches, current, round_)
    athletes = present(m)
    if len(athletes) == 2 and current == athletes[1]:
        return athletes[0]
    i = list(matches).index(m)
    prev = last_athlete(matches[:i])
    return current if prev is None else prev


def display_next(method: str, state: str, *, one_form: bool, final_complete: bool) -> str:
    """The state after a `display` request (§5): SE and SBS cycle their pages differently."""
    if method == "se":
        cycle = {"matches": "score", "score": "results", "results": "bracket", "bracket": "leaderboard",
                 "leaderboard": "matches"}
        return cycle.get(state, "score")
    if state == "score":
        return "bracket" if one_form else "results"
    if state == "bracket":
        return "leaderboard" if final_complete else "matches"
    cycle = {"results": "bracket", "leaderboard": "matches", "matches": "score"}
    return cycle.get(state, "score")


# -- autopilot ----------------------------------------------------------------------

STEP_DELAY = {"scoreboard": 7, "results": 7, "bracket": 12, "leaderboard": 12, "next": 1, "matches": 7}
STEP_STATE = {"scoreboard": "score", "results": "results", "bracket": "bracket", "leaderboard": "leaderboard",
              "matches": "matches"}


@dataclass(frozen=True)
class Snapshot:
    """What autopilot decides on, taken once when it is armed (§7)."""

    method: str
    round: str
    next_round: str | None
    current: int
    form: int
    forms: int
    matches: tuple[Match, ...]
    match_complete: bool
    round_complete: bool
    decision_in_match: bool
    bye: bool = False

    @property
    def last_round(self) -> bool:
        return self.next_round is None

    @property
    def last_form(self) -> bool:
        return self.form >= self.forms - 1


def autopilot_steps(s: Snapshot) -> list[str]:
    """The step sequence as observed upstream (the SE two-form match stops after its scoreboard)."""
    steps: list[str] = []
    done = s.match_complete
    if s.method == "sbs":
        if not s.bye:
            steps.append("scoreboard")
        if s.forms > 1 and done:
            steps.append("results")
        if done and not s.bye:
            steps.append("leaderboard" if s.last_round else "bracket")
        if not (s.last_round and s.last_form):
            steps += ["next", "matches"]
        return steps
    steps.append("scoreboard")
    if s.forms > 1 and done:
        return steps
    if done:
        steps.append("leaderboard" if s.last_round else "bracket")
    steps.append("next")
    return steps


def next_position(s: Snapshot) -> tuple[str, int, int] | None:
    """Where the autopilot `next` step moves (round, athlete, form), or None when nothing moves."""
    current, form = s.current, s.form
    match = current_match(s.matches, s.current, s.round)
    athletes = present(match)
    was_last = bool(athletes) and s.current == athletes[-1]
    if s.method == "se":
        if not s.last_form and was_last:
            current = athletes[0]
        elif not was_last and len(athletes) == 2:
            current = athletes[1]
    if s.round_complete and s.next_round is not None:
        return (s.next_round, -1, 0)  # -1: the first athlete of the next round, once it exists
    i = list(s.matches).index(match)
    if s.match_complete and i < len(s.matches) - 1:
        nxt = first_athlete(s.matches[i + 1:])
        if nxt is not None:
            return (s.round, nxt, 0)
    form_ok = was_last if s.method == "se" else not s.decision_in_match
    if not s.last_form and form_ok:
        return (s.round, current, form + 1)
    if current != s.current:
        return (s.round, current, form)
    return None


def division_over(s: Snapshot) -> bool:
    """The last round's last match is complete: SE autopilot switches itself off (a deviation)."""
    return s.last_round and s.round_complete


# -- poomsae draw -------------------------------------------------------------------

def check_age(age: Any) -> str:
    if isinstance(age, str) and (age in AGE_POOLS or _CUSTOM_POOL.match(age)):
        return age
    raise BracketError(f"Invalid age '{age}'")


def draw_forms(forms: dict[str, list[str]], rounds: Sequence[str], age: str) -> dict[str, list[str]]:
    """Every form name of every listed round becomes `draw-<age>`."""
    out = {r: list(f) for r, f in forms.items()}
    for r in rounds:
        if r in out:
            out[r] = [f"draw-{age}" for _ in out[r]]
    return out


def record_draw(draws: Any, round_: str, match_number: int, form: int, name: str) -> dict[str, Any]:
    """draws[round]["<match>"][form] = name; earlier entries kept, unfilled earlier slots null."""
    out: dict[str, Any] = {}
    if isinstance(draws, dict):  # a malformed draws line is replaced, not trusted
        out = {r: {k: list(v) for k, v in m.items() if isinstance(v, list)}
               for r, m in draws.items() if isinstance(m, dict)}
    slots = out.setdefault(round_, {}).setdefault(str(match_number), [])
    while len(slots) <= form:
        slots.append(None)
    slots[form] = name
    return out

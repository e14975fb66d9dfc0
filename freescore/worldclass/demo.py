"""The demo tournament `demo`: two rings of divisions with invented athletes, so a fresh install has something to show.

Written once, in upstream's division format, when `[worldclass] demo = true` and
`<data>/demo` does not exist; an existing `demo` (even one a user emptied) is never touched.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path

from freescore.poomsae.layout import PROGRESS, Layout, ring_folder
from freescore.poomsae.store import write_file
from freescore.worldclass.divfile import Athlete, Division, format_division, format_progress, pad
from freescore.worldclass.scoring import first_round
from freescore.worldclass.store import FORMS_DIR

DB = "demo"

# ring -> (divid, description, finals forms, athletes)
_RINGS: dict[int, list[tuple[str, str, list[str], list[str]]]] = {
    1: [
        ("p01", "Male Cadets", ["Taegeuk 6", "Koryo"],
         ["Tomas Ferreira", "Kenji Watanabe", "Luca Moretti", "Samuel Okafor", "Min-jun Park", "Elias Berg"]),
        ("p02", "Female Juniors", ["Koryo", "Keumgang"],
         ["Ana Lima", "Hana Sato", "Maya Cohen", "Zoe Martin", "Ji-woo Kim", "Lea Novak", "Amira Haddad",
          "Sofia Rossi", "Ingrid Dahl", "Priya Nair"]),
        ("p03", "Mixed Pairs Under 17", ["Taegeuk 7", "Koryo"],
         ["Nora Vidal & Omar Aziz", "Eva Kral & Leo Hart", "Mia Chen & Ravi Shah", "Ida Holm & Ben Adler"]),
    ],
    2: [
        ("p04", "Female Seniors", ["Keumgang", "Taebaek"],
         ["Clara Weiss", "Yuna Choi", "Rosa Duarte", "Elif Kaya", "Grace Mensah", "Lucia Ortega", "Astrid Lund"]),
        ("p05", "Male Over 30", ["Taebaek", "Pyongwon"],
         ["Daniel Ruiz", "Hiroshi Mori", "Peter Novak", "Karim Saleh", "Jonas Weber"]),
    ],
}


def _division(divid: str, description: str, forms: list[str], names: list[str]) -> Division:
    """A division ready to score: its first round by field size, every athlete in it."""
    first = first_round(len(names))
    rounds = {"prelim": ["Taegeuk 5"], "semfin": ["Taegeuk 8", "Koryo"], "finals": forms}
    div = Division(name=divid, description=description, round=first, judges=5)
    order = ("prelim", "semfin", "finals")
    div.forms = {r: rounds[r] for r in order[order.index(first):]}
    div.athletes = [Athlete(name=name) for name in names]
    div.order = {first: list(range(len(names)))}
    pad(div)
    return div


def divisions() -> dict[int, list[Division]]:
    """The demo's divisions by ring (fresh objects on every call)."""
    return {ring: [_division(*spec) for spec in specs] for ring, specs in _RINGS.items()}


def ensure(root: Path) -> bool:
    """Create `<root>/demo` unless anything by that name exists; True when this call created it.

    The tournament is written in a hidden folder (a name no URL can reach) and renamed into
    place, so a crash leaves either no `demo` or a whole one.
    """
    target = root / DB
    if target.exists() or target.is_symlink():
        return False
    layout = Layout(root, FORMS_DIR)
    building = root / f".{DB}-{secrets.token_hex(4)}.tmp"
    building.mkdir()
    try:
        for ring, divs in divisions().items():
            ring_dir = building / layout.forms / ring_folder(ring)
            ring_dir.mkdir(parents=True)
            for div in divs:
                write_file(ring_dir / layout.division_file(div.name), format_division(div))
            write_file(ring_dir / PROGRESS, format_progress({"current": divs[0].name}))
        try:
            os.rename(building, target)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                return False  # someone made it meanwhile: theirs wins
            raise
        return True
    finally:
        shutil.rmtree(building, ignore_errors=True)

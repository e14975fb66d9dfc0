"""Where a FreeScore service keeps its data (pure path arithmetic, no file access).

    <data root>/<db>/<forms dir>/            the tournament (`forms-worldclass`, `forms-freestyle`, ...)
        staging/div.<divid>.txt             divisions not assigned to a ring
        ring01/progress.txt                 the ring's current division (folders `ring%02d`)
        ring01/div.<divid>.txt              the ring's divisions, in the service's own file format

A service names its forms folder (and, if it ever differs, its division file
pattern); everything else is common. `store.py` does the reading and writing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from freescore.poomsae.ids import DIVID_RE, STAGING, Ring, check_db

RING_DIR = re.compile(r"^ring(\d+)$")
PROGRESS = "progress.txt"


def ring_folder(ring: Ring) -> str:
    """`ring01` ... `ring999`, or `staging`."""
    return STAGING if ring == STAGING else f"ring{int(ring):02d}"


def ring_of_folder(name: str) -> int | None:
    """The ring number a folder name stands for (`ring07` -> 7), or None."""
    m = RING_DIR.match(name)
    return int(m.group(1)) if m and 1 <= int(m.group(1)) <= 999 else None


@dataclass(frozen=True)
class Layout:
    """One service's data layout under its data root."""

    root: Path
    forms: str
    """The tournament's folder for this service: `forms-worldclass`, `forms-freestyle`, `forms-grassroots`."""
    division_prefix: str = "div."
    division_suffix: str = ".txt"

    def db_dir(self, db: str) -> Path:
        """`<root>/<db>` (db checked: no path can leave the root through it)."""
        return self.root / check_db(db)

    def tournament(self, db: str) -> Path:
        """`<root>/<db>/<forms>`: the folder holding the tournament's rings and staging."""
        return self.db_dir(db) / self.forms

    def ring_dir(self, db: str, ring: Ring) -> Path:
        return self.tournament(db) / ring_folder(ring)

    def division_file(self, divid: str) -> str:
        return f"{self.division_prefix}{divid}{self.division_suffix}"

    def divid_of_file(self, name: str) -> str | None:
        """The division id a file name stands for (`div.p01.txt` -> `p01`), or None (not a safe divid)."""
        if not (name.startswith(self.division_prefix) and name.endswith(self.division_suffix)):
            return None
        divid = name[len(self.division_prefix):len(name) - len(self.division_suffix)]
        return divid if DIVID_RE.match(divid) else None

"""A ring folder's state in memory (pure): its divisions, its progress.txt, its autopilot generation.

`RingFolder` is what a FreeScore service's logic works on; `store.DataStore.sync`
fills it from the disk (and only the store touches the disk). A service's ring
class extends it with its own JSON (worldclass: `division_json`, `ring_json`).

    divisions      {divid: entry}, sorted by divid; an entry has at least `path` and `stamp`
    progress       progress.txt's keys; `current_divid()` applies the shared rule
    errors         {divid: why its file could not be read} (the division is left out)
    autopilot_gen  bumped by every manual change: an autopilot step armed before it is stale
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from freescore.poomsae.ids import Ring
from freescore.poomsae.layout import PROGRESS, Layout, ring_folder
from freescore.poomsae.progress import current_divid

Stamp = tuple[int, int]


class RingFolder:
    """One ring folder (or staging) of one tournament, as last read or changed."""

    def __init__(self, layout: Layout, base: Path, ring: Ring) -> None:
        self.layout = layout
        self.ring = ring
        self.dir = base / ring_folder(ring)
        self.divisions: dict[str, Any] = {}
        self.progress: dict[str, str] = {}
        self.progress_stamp: Stamp | None = None
        self.errors: dict[str, str] = {}
        self.autopilot_gen = 0

    @property
    def progress_path(self) -> Path:
        return self.dir / PROGRESS

    def new_path(self, divid: str) -> Path:
        """Where division `divid` of this ring lives (or will)."""
        return self.dir / self.layout.division_file(divid)

    def current_divid(self) -> str | None:
        return current_divid(self.progress, self.divisions)

    def keep_unsaved(self, entry: Any) -> bool:
        """Whether a division no longer on disk stays (it has changes not yet written); a service's ring says."""
        return False

    def sort(self) -> None:
        self.divisions = dict(sorted(self.divisions.items()))

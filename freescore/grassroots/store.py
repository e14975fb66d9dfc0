"""Grassroots rings on disk: `<data>/<db>/forms-grassroots/ring%02d/div.<divid>.txt` and progress.txt.

Everything generic (stamps, atomic writes with fsync, discovery) is
`freescore.poomsae.store.DataStore`; this adds the division file format and
remembers which rings a flush wrote, so their live streams (SSE) go out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from freescore.grassroots import scoring
from freescore.grassroots.divfile import format_division, parse_division
from freescore.poomsae.layout import Layout
from freescore.poomsae.rings import Loaded, RingFolder
from freescore.poomsae.store import DataStore, Stamp

FORMS = "forms-grassroots"


class GrassrootsStore(DataStore):
    def __init__(self, root: Path) -> None:
        super().__init__(Layout(Path(root).resolve(), FORMS))
        self.written: set[tuple[str, Any]] = set()
        """Rings `(db, ring)` written since the service last streamed them."""

    def parse(self, text: str, divid: str, path: Path, stamp: Stamp) -> Loaded[Any, Any]:
        div = parse_division(text, divid)
        return Loaded(div, path, stamp, scoring.compute(div))

    def format(self, entry: Loaded[Any, Any]) -> str:
        return format_division(entry.div)

    def commit(self, ring: RingFolder, entry: Any, descriptions: list[str], now: float) -> None:
        super().commit(ring, entry, descriptions, now)
        self.written.add((ring.t.db, ring.ring))

    def save_progress(self, ring: RingFolder) -> None:
        super().save_progress(ring)
        self.written.add((ring.t.db, ring.ring))

    def take_written(self) -> set[tuple[str, Any]]:
        written, self.written = self.written, set()
        return written

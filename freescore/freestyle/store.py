"""Freestyle's files: JSON division files in `<db>/forms-freestyle`, on the common FreeScore store.

Everything generic (stamps, atomic writes with fsync, discovery, progress.txt)
is `freescore.poomsae.store.DataStore`; this adds the freestyle folder and file
format. The rules (`logic`) get a `FreestyleStore` handed in and never import
this module.
"""

from __future__ import annotations

import random
from pathlib import Path

from freescore.freestyle.divfile import format_division, parse_division
from freescore.freestyle.division import Division
from freescore.poomsae.layout import Layout, ring_of_folder
from freescore.poomsae.store import DataStore, Stamp

FORMS_DIR = "forms-freestyle"


class FreestyleStore(DataStore):
    """The data root of the freestyle service; a ring's entries are `Division`s."""

    def __init__(self, root: Path, rng: random.Random | None = None) -> None:
        super().__init__(Layout(Path(root).resolve(), FORMS_DIR))
        self.rng = rng or random.Random()

    def parse(self, text: str, divid: str, path: Path, stamp: Stamp) -> Division:
        ring = ring_of_folder(path.parent.name) or path.parent.name
        div = Division(parse_division(text), divid, str(path), ring, self.rng)
        div.path, div.stamp = path, stamp
        return div

    def format(self, entry: Division) -> str:
        return format_division(entry.data)

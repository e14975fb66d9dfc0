"""Grassroots rings on disk: `<data>/<db>/forms-grassroots/ring%02d/div.<divid>.txt` and progress.txt.

Every request starts from the files (the PHP editor and RCS restores write
them too); a file's text is reused only while its stamp holds. Writes go
through `poomsae.store.write_file`: temp file, fsync, rename, mode 0666.
"""

from __future__ import annotations

from pathlib import Path

from freescore.grassroots.divfile import format_division, parse_division
from freescore.grassroots.logic import RingData
from freescore.poomsae import store
from freescore.poomsae.ids import RequestError, Ring
from freescore.poomsae.layout import PROGRESS, Layout
from freescore.poomsae.progress import format_progress, parse_progress

FORMS = "forms-grassroots"


class GrassrootsStore:
    def __init__(self, root: Path, create_tournaments: bool = False) -> None:
        self.layout = Layout(root, FORMS)
        self.create_tournaments = create_tournaments
        self._texts: dict[Path, tuple[store.Stamp, str]] = {}

    def tournament_allowed(self, db: str) -> bool:
        return self.create_tournaments or store.tournament_exists(self.layout, db)

    def _text(self, path: Path, stamp: store.Stamp) -> str:
        cached = self._texts.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        text = store.read_text(path)
        self._texts[path] = (stamp, text)
        return text

    def load(self, db: str, ring: Ring) -> RingData:
        """The ring as its files say now; a missing ring folder is an empty ring."""
        if not self.tournament_allowed(db):
            raise RequestError(f"No tournament '{db}'")
        folder = store.tournament_folder(self.layout, db) / self.layout.ring_dir(db, ring).name
        divisions = {}
        for divid, (path, stamp) in store.scan_divisions(self.layout, folder).items():
            try:
                divisions[divid] = parse_division(self._text(path, stamp), divid)
            except (OSError, UnicodeDecodeError):
                continue  # vanished or unreadable between the scan and the read: not part of the ring now
        progress_file = folder / PROGRESS
        progress = parse_progress(store.read_text(progress_file)) if progress_file.is_file() else {}
        return RingData(db, ring, str(folder), divisions, progress)

    def save(self, ring: RingData) -> None:
        """Write what the handler changed (atomically, before anything is sent)."""
        if not ring.changed and not ring.progress_changed:
            return
        folder = Path(ring.path)
        folder.mkdir(parents=True, exist_ok=True)
        for divid in sorted(ring.changed):
            path = folder / self.layout.division_file(divid)
            text = format_division(ring.divisions[divid])
            new = store.write_file(path, text)
            if new is not None:
                self._texts[path] = (new, text)
        if ring.progress_changed:
            store.write_file(folder / PROGRESS, format_progress(ring.progress))

"""The FreeScore data directory on disk: the one module of the layer that touches files.

Other programs (the PHP editor, Perl reports, RCS restores) write the same
files, so nothing here trusts a cache without its stamp: `(mtime_ns, size)` of
a file, compared before reusing what was parsed. Writes are atomic (temp file,
fsync, rename, folder fsync, via `freescore.persist.write_atomic`) and leave
mode 0666 as upstream does, so the PHP side can write them too.

    stamp(path)                      (mtime_ns, size) or None
    write_file(path, text)           atomic write; returns the new stamp
    read_text(path)                  UTF-8 text
    tournament_folder(layout, db)    `<root>/<db>/<forms>`, refused if a link leads it out of the root
    tournament_exists(layout, db)    whether `<root>/<db>` is a folder someone set up
    scan_divisions(layout, folder)   {divid: (path, stamp)} of a ring folder, sorted
    ring_numbers(folder)             the ring folders of a tournament, as numbers
"""

from __future__ import annotations

import os
from pathlib import Path

from freescore.persist import write_atomic
from freescore.poomsae.ids import RequestError
from freescore.poomsae.layout import Layout, ring_of_folder

Stamp = tuple[int, int]


def stamp(path: Path) -> Stamp | None:
    """`(mtime_ns, size)` of a file, or None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def write_file(path: Path, text: str) -> Stamp | None:
    """Write atomically (fsync before the rename) with upstream's mode 0666; returns the new stamp."""
    write_atomic(path, text)
    try:
        os.chmod(path, 0o666)
    except OSError:
        pass
    return stamp(path)


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def tournament_folder(layout: Layout, db: str) -> Path:
    """The tournament's folder; RequestError for a bad db or one whose real path leaves the data root."""
    folder = layout.tournament(db)
    if not folder.resolve().is_relative_to(layout.root.resolve()):
        raise RequestError(f"Invalid db '{db}'")
    return folder


def tournament_exists(layout: Layout, db: str) -> bool:
    """Whether `<root>/<db>` is a folder (a tournament someone set up, not just a name in a URL)."""
    try:
        path = layout.db_dir(db)
    except RequestError:
        return False
    return path.resolve().is_relative_to(layout.root.resolve()) and path.is_dir()


def scan_divisions(layout: Layout, folder: Path) -> dict[str, tuple[Path, Stamp]]:
    """The division files of a ring folder by divid (sorted), with their stamps; a missing folder is empty."""
    found: dict[str, tuple[Path, Stamp]] = {}
    if not folder.is_dir():
        return found
    with os.scandir(folder) as it:
        for entry in it:
            divid = layout.divid_of_file(entry.name)
            if divid is None or not entry.is_file():
                continue
            st = entry.stat()
            found[divid] = (Path(entry.path), (st.st_mtime_ns, st.st_size))
    return dict(sorted(found.items()))


def ring_numbers(folder: Path) -> list[int]:
    """The numbered ring folders (`ring01` ... `ring999`) of a tournament folder, in folder-name order."""
    if not folder.is_dir():
        return []
    rings = [(ring_of_folder(name), name) for name in sorted(os.listdir(folder))]
    return [r for r, name in rings if r is not None and (folder / name).is_dir()]

"""The FreeScore data directory on disk: the one module of the layer that touches files.

Other programs (the PHP editor, Perl reports, RCS restores) write the same
files, so nothing here trusts a cache without its stamp: `(mtime_ns, size)` of
a file, compared before reusing what was parsed. Writes are atomic (temp file,
fsync, rename, folder fsync, via `freescore.persist.write_atomic`) and leave
mode 0666 as upstream does, so the PHP side can write them too.

    stamp(path)                      (mtime_ns, size) or None
    write_file(path, text)           atomic write; returns the new stamp
    read_text(path)                  the file's text (`decode_text`: BOM dropped, Latin-1 if not UTF-8)
    tournament_folder(layout, db)    `<root>/<db>/<forms>`, refused if a link leads it out of the root
    tournament_exists(layout, db)    whether `<root>/<db>` is a folder someone set up
    scan_divisions(layout, folder)   {divid: (path, stamp)} of a ring folder, sorted
    ring_numbers(folder)             the ring folders of a tournament, as numbers

`DataStore(layout)` puts them behind one object that a service's logic is
handed (it never imports this module): `load(ring)` brings a `RingFolder` up
to date with the disk, re-reading only files whose stamp changed;
`commit(ring, entry, ...)` writes a changed division; the other methods write,
move and delete on the logic's behalf. A service subclasses it with its file
format: `parse(text, divid, path, stamp)` and `format(entry)`.
"""

from __future__ import annotations

import codecs
import errno
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from freescore.persist import write_atomic
from freescore.poomsae.ids import RequestError
from freescore.poomsae.layout import Layout, ring_of_folder
from freescore.poomsae.progress import format_progress, parse_progress
from freescore.poomsae.rings import RingFolder
from freescore.wireformat import MAX_DEPTH, loads_strict

Stamp = tuple[int, int]
log = Logger(namespace="freescore.poomsae")
MAX_DIVISION_BYTES = 16 << 20
"""A division file larger than this is left out unread: the biggest real ones are well under 2 MiB, and
parsing a stray huge file would stall every ring of every FreeScore service (one reactor) or exhaust memory."""


def stamp(path: Path) -> Stamp | None:
    """`(mtime_ns, size)` of a file, or None when there is none (also under a ring "folder" that is a file
    or a symlink loop: such a ring reads as one without a folder, as `scan_divisions` sees it)."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
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


def decode_text(data: bytes) -> str:
    """A data file's bytes as text: UTF-8 without the BOM a Windows editor adds, else Latin-1.

    Operators edit division files by hand; a BOM or an old editor's Latin-1 name must not
    make a division vanish (upstream's Perl reads bytes and shows such names as Latin-1).
    Files are always written back as UTF-8.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text(path: Path) -> str:
    """A regular file's text; OSError for a FIFO, device or folder by that name (a FIFO would block the
    reactor, and every ring of the process with it, until some writer came)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    with os.fdopen(fd, "rb") as f:
        return decode_text(f.read())


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
            try:
                if divid is None or not entry.is_file():
                    continue
                st = entry.stat()
            except FileNotFoundError:  # removed by another program while we looked
                continue
            found[divid] = (Path(entry.path), (st.st_mtime_ns, st.st_size))
    return dict(sorted(found.items()))


def ring_numbers(folder: Path) -> list[int]:
    """The numbered ring folders (`ring01` ... `ring999`) of a tournament folder, in folder-name order."""
    if not folder.is_dir():
        return []
    rings = [(ring_of_folder(name), name) for name in sorted(os.listdir(folder))]
    return [r for r, name in rings if r is not None and (folder / name).is_dir()]


Parse = Callable[[str, str, Path, Stamp], Any]
"""`parse(text, divid, path, stamp)` -> the ring's entry for a division file; ValueError if unreadable."""


class DataStore:
    """One FreeScore service's data root on disk."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.refused: dict[Path, Stamp | None] = {}
        """Division files that could not be read, with the stamp of the version logged (once, not per load)."""

    def tournament_exists(self, db: str) -> bool:
        return tournament_exists(self.layout, db)

    def tournament_folder(self, db: str) -> Path:
        return tournament_folder(self.layout, db)

    def rings(self, base: Path) -> list[int]:
        return ring_numbers(base)

    def sync(self, ring: RingFolder, parse: Parse) -> None:
        """Reload what another program changed (stamp), drop what it removed, re-read progress.txt."""
        found = scan_divisions(self.layout, ring.dir)
        for divid, (path, st) in found.items():
            entry = ring.divisions.get(divid)
            if entry is not None and entry.stamp == st or ring.errors.get(divid, (None,))[0] == st:
                continue  # unchanged: parsed (or refused) already
            try:
                if st[1] > MAX_DIVISION_BYTES:
                    raise ValueError(f"{st[1]} bytes, larger than a division file can be ({MAX_DIVISION_BYTES})")
                ring.divisions[divid] = parse(read_text(path), divid, path, st)
            except (ValueError, OSError) as e:  # a malformed or vanished file: left out, its reason kept
                ring.errors[divid] = (st, str(e))
                ring.divisions.pop(divid, None)
                self.refuse(path, st, "left out of its ring, the file cannot be read", e)
                continue
            ring.errors.pop(divid, None)
            self.refused.pop(path, None)
        for divid in [d for d in ring.errors if d not in found]:
            del ring.errors[divid]
        for divid in [d for d, e in ring.divisions.items() if d not in found and not ring.keep_unsaved(e)]:
            del ring.divisions[divid]
        ring.sort()
        st = stamp(ring.progress_path)
        if st != ring.progress_stamp:
            try:
                ring.progress = parse_progress(read_text(ring.progress_path)) if st else {}
            except OSError as e:  # vanished or not a file: no current division, as with none
                self.refuse(ring.progress_path, st, "cannot be read", e)
                ring.progress = {}
            ring.progress_stamp = st

    def refuse(self, path: Path, st: Stamp | None, what: str, error: Exception) -> None:
        """Log a file that cannot be read, once per version (not on every load of its tournament)."""
        if self.refused.get(path) != st:
            self.refused[path] = st
            log.warn("{path}: {what}: {error}", path=str(path), what=what, error=error)

    # -- a service's division files: its `parse` and `format` -------------------------
    def parse(self, text: str, divid: str, path: Path, stamp: Stamp) -> Any:
        """A division file's text -> the ring's entry for it (with `path` and `stamp`); ValueError if unreadable."""
        raise NotImplementedError

    def format(self, entry: Any) -> str:
        """A ring entry -> its division file's text."""
        raise NotImplementedError

    def load(self, ring: RingFolder) -> None:
        """Bring a ring up to date with its folder (only changed files are parsed)."""
        self.sync(ring, self.parse)

    def commit(self, ring: RingFolder, entry: Any, descriptions: list[str], now: float) -> None:
        """Write one changed division (atomically; a service keeping history extends this)."""
        entry.stamp = self.write(entry.path, self.format(entry))

    def write(self, path: Path, text: str) -> Stamp | None:
        """Write atomically, making the folder if needed; returns the new stamp."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_file(path, text)

    def read(self, path: Path) -> str | None:
        """A file's text, or None when there is none (nor any regular file by that name)."""
        if not path.is_file():  # missing, or a folder or FIFO by that name
            return None
        try:
            return read_text(path)
        except FileNotFoundError:
            return None

    def holds(self, path: Path) -> bool:
        """Whether a file is there (a division `write` without `overwrite` must not replace it)."""
        return path.exists()

    def save_progress(self, ring: RingFolder) -> None:
        ring.progress_stamp = self.write(ring.progress_path, format_progress(ring.progress))

    def move(self, source: Path, target: Path) -> None:
        """Rename a file into another folder (made if needed), replacing nothing by accident: the caller checked."""
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def move_tree(self, source: Path, target: Path) -> None:
        """Move a folder (a division's history), replacing what was at the target."""
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            shutil.move(str(source), str(target))

    def delete(self, *paths: Path) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    def delete_tree(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def make_folders(self, *folders: Path) -> None:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)

    def is_folder(self, path: Path) -> bool:
        return path.is_dir()

    def read_json(self, path: Path, default: Any = None) -> Any:
        """A JSON file's value, or `default` when it is missing or not JSON a page could read back
        (`loads_strict`: no NaN, Infinity or 1e999, nothing deeper than `MAX_DEPTH`)."""
        text = self.read(path)
        try:
            return default if text is None else loads_strict(text, max_depth=MAX_DEPTH)
        except ValueError:
            return default

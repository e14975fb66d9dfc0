"""Worldclass's files: its division text format, its version history and the tournament's draws.

Everything generic (stamps, atomic writes, discovery, moves) is
`freescore.poomsae.store.DataStore`; this adds what only worldclass keeps. The
rules (`logic`, `handlers`, `model`) get a `WorldclassStore` handed in and
never import this module.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from freescore.poomsae.layout import Layout
from freescore.poomsae.store import DataStore, Stamp, read_text
from freescore.worldclass import scoring
from freescore.worldclass.divfile import format_division, parse_division
from freescore.worldclass.model import NO_DRAWS, Loaded, RingState
from freescore.worldclass.wire import utc_time

FORMS_DIR = "forms-worldclass"
LOG_KEYS = ("number", "datetime", "description")
VERSION = re.compile(r"1\.\d{1,9}")


class History:
    """Every saved version of a division, numbered 1.1, 1.2, ... (RCS is not required).

    Versions live in `<ring dir>/.history/div.<divid>/1.<n>.txt` with a `log` of
    `{number, datetime, description}` lines. The version count is cached in the
    store that made this History (`counts`), so two stores never share a stale count.
    """

    def __init__(self, counts: dict[Path, int], ring_dir: Path, divid: str) -> None:
        self.counts = counts
        self.dir = history_dir(ring_dir, divid)

    def entries(self) -> list[dict[str, Any]]:
        """The log's entries; a line that is not one (cut short by a crash, edited by hand) is skipped."""
        log = self.dir / "log"
        if not log.exists():
            return []
        out = []
        for line in read_text(log).splitlines():
            try:
                entry = json.loads(line)  # only its three strings are read: other values may be anything
            except (ValueError, RecursionError):  # RecursionError: nested deeper than Python reads
                continue
            if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in LOG_KEYS):
                out.append(entry)
        return out

    def count(self) -> int:
        """The highest version number kept (logged or on disk), so a new version never overwrites one."""
        n = self.counts.get(self.dir)
        if n is None:
            numbers = [e["number"] for e in self.entries()] + [p.stem for p in self.dir.glob("1.*.txt")]
            n = self.counts[self.dir] = max((int(x[2:]) for x in numbers if VERSION.fullmatch(x)), default=0)
        return n

    def add(self, text: str, description: str, now: float) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        n = self.count() + 1
        number = f"1.{n}"
        (self.dir / f"{number}.txt").write_text(text, encoding="utf-8")
        entry = {"number": number, "datetime": utc_time(now), "description": description}
        with open(self.dir / "log", "a+b") as f:
            cut = False  # a last line cut short (a crash, a full disk) must not swallow this one
            if f.seek(0, os.SEEK_END):
                f.seek(-1, os.SEEK_END)
                cut = f.read(1) != b"\n"
            f.write((("\n" if cut else "") + json.dumps(entry) + "\n").encode("utf-8"))
        self.counts[self.dir] = n
        return number

    def text(self, number: str) -> str | None:
        if not VERSION.fullmatch(number):
            return None
        path = self.dir / f"{number}.txt"
        return read_text(path) if path.is_file() else None


def history_dir(ring_dir: Path, divid: str) -> Path:
    return ring_dir / ".history" / f"div.{divid}"


class WorldclassStore(DataStore):
    """The worldclass data root: `<root>/<db>/forms-worldclass/...`."""

    def __init__(self, root: Path) -> None:
        super().__init__(Layout(Path(root).resolve(), FORMS_DIR))
        self.history_counts: dict[Path, int] = {}

    def history(self, ring_dir: Path, divid: str) -> History:
        return History(self.history_counts, ring_dir, divid)

    def load(self, state: RingState) -> None:
        """Bring a ring up to date with its folder (only changed files are parsed)."""
        def parse(text: str, divid: str, path: Path, stamp: Stamp) -> Loaded:
            div = parse_division(text, divid)
            return Loaded(div=div, path=path, stamp=stamp, results=scoring.compute(div))

        self.sync(state, parse)

    def format(self, loaded: Loaded) -> str:
        return format_division(loaded.div)

    def commit(self, state: RingState, loaded: Loaded, descriptions: list[str], now: float) -> None:
        """Write the division atomically and keep the version (the file as it was, first, if unversioned)."""
        text = self.format(loaded)
        history = self.history(state.dir, loaded.div.name)
        if not history.count():
            before = self.read(loaded.path)
            if before is not None:
                history.add(before, loaded.div.description, now)
        loaded.stamp = self.write(loaded.path, text)
        history.add(text, "; ".join(dict.fromkeys(descriptions)), now)

    def move_division(self, source: RingState, target: RingState, divid: str, path: Path) -> None:
        """The file and its history, into the target ring's folder."""
        self.move(path, target.new_path(divid))
        old, new = history_dir(source.dir, divid), history_dir(target.dir, divid)
        self.history_counts.pop(old, None)
        self.history_counts.pop(new, None)
        self.move_tree(old, new)

    def delete_division(self, state: RingState, divid: str, path: Path) -> None:
        """The file, an RCS `,v` beside it, and its history."""
        self.delete(path, path.parent / (path.name + ",v"))
        self.delete_history(state.dir, divid)

    def delete_history(self, ring_dir: Path, divid: str) -> None:
        folder = history_dir(ring_dir, divid)
        self.history_counts.pop(folder, None)
        self.delete_tree(folder)

    def draws(self, base: Path) -> Any:
        """The tournament's `draws.json`, or NO_DRAWS (missing or not JSON)."""
        return self.read_json(base / "draws.json", NO_DRAWS)

    def write_draws(self, base: Path, draws: Any) -> None:
        self.write(base / "draws.json", json.dumps(draws, sort_keys=True, indent=2) + "\n")

    def delete_draws(self, base: Path) -> None:
        self.delete(base / "draws.json")

"""Tournaments and ring folders on a real data root, with a JSON division format as freestyle keeps:
the layer is the same for every FreeScore service, only `parse` and `format` are the service's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from freescore.poomsae.ids import SaveError
from freescore.poomsae.layout import Layout
from freescore.poomsae.rings import Loaded, Tournaments
from freescore.poomsae.store import DataStore
from freescore.worldclass.store import WorldclassStore


class JsonStore(DataStore):
    def parse(self, text, divid, path, stamp):
        return Loaded(json.loads(text), path, stamp)

    def format(self, entry):
        return json.dumps(entry.div, indent=2, sort_keys=True) + "\n"


@pytest.fixture
def root(tmp_path):
    ring = tmp_path / "t" / "forms-freestyle" / "ring01"
    ring.mkdir(parents=True)
    (ring / "div.b.txt").write_text('{"name": "b"}')
    (ring / "div.a.txt").write_text('{"name": "a"}')
    (ring / "progress.txt").write_text("# current=b\n")
    return tmp_path


def rules(root):
    return Tournaments(JsonStore(Layout(root, "forms-freestyle")))


def test_a_ring_is_read_once_per_request_and_changed_files_only(root):
    fs = rules(root)
    ring = fs.tournament("t").ring(1)
    assert list(ring.divisions) == ["a", "b"] and ring.current_divid() == "b"
    a, b = ring.divisions["a"], ring.divisions["b"]
    path = ring.dir / "div.a.txt"
    path.write_text('{"name": "a", "edited": true}')
    assert fs.tournaments["t"].ring(1).divisions["a"] is a  # the same request: no rescan
    ring = fs.tournament("t").ring(1)  # the next request sees the edit, and re-reads nothing else
    assert ring.divisions["a"].div == {"name": "a", "edited": True} and ring.divisions["b"] is b
    os.unlink(ring.dir / "div.b.txt")
    ring = fs.tournament("t").ring(1)
    assert list(ring.divisions) == ["a"] and ring.current_divid() == "a"


def test_changes_wait_for_flush_and_survive_a_rescan_until_written(root):
    fs = rules(root)
    t = fs.tournament("t")
    ring = t.ring(1)
    entry = ring.divisions["a"]
    entry.div["score"] = 9.1
    ring.mark("a", entry, "score", 0.0)
    new = Loaded({"name": "c"}, ring.new_path("c"), None)
    ring.divisions["c"] = new
    ring.mark("c", new, "write", 0.0)
    assert json.loads((ring.dir / "div.a.txt").read_text()) == {"name": "a"}
    assert "c" in fs.tournament("t").ring(1).divisions  # not on disk yet, kept: it is unsaved
    assert fs.flush() == {}
    assert json.loads((ring.dir / "div.a.txt").read_text())["score"] == 9.1
    assert json.loads((ring.dir / "div.c.txt").read_text()) == {"name": "c"}
    assert entry.stamp == ((ring.dir / "div.a.txt").stat().st_mtime_ns, (ring.dir / "div.a.txt").stat().st_size)


def test_a_failed_write_forgets_the_tournament(root):
    fs = rules(root)
    ring = fs.tournament("t").ring(1)
    entry = ring.divisions["a"]
    entry.div["score"] = 1
    ring.mark("a", entry, "score", 0.0)
    shutil.rmtree(ring.dir)
    ring.dir.write_text("a file where the folder was")
    failed = fs.flush()
    assert list(failed) == ["t"] and isinstance(failed["t"], SaveError) and fs.tournaments == {}
    assert failed["t"].message.startswith("could not save the changes to tournament 't': ")


def test_unreadable_files_are_left_out_with_their_reason(root):
    (root / "t" / "forms-freestyle" / "ring01" / "div.bad.txt").write_text("{not json")
    ring = rules(root).tournament("t").ring(1)
    assert "bad" not in ring.divisions and "bad" in ring.errors


def test_progress_is_written_by_the_store(root):
    fs = rules(root)
    ring = fs.tournament("t").ring("staging")
    assert ring.divisions == {} and ring.current_divid() is None
    ring.progress["current"] = "x"
    ring.save_progress()
    assert (root / "t" / "forms-freestyle" / "staging" / "progress.txt").read_text() == "# current=x\n"
    assert fs.exists("t") and not fs.exists("u")


def test_history_counts_belong_to_their_store(tmp_path):
    ring_dir = tmp_path / "t" / "forms-worldclass" / "ring01"
    ring_dir.mkdir(parents=True)
    one, two = WorldclassStore(tmp_path), WorldclassStore(tmp_path)
    assert one.history(ring_dir, "p01").add("v1\n", "first", 0.0) == "1.1"
    assert two.history(ring_dir, "p01").add("v2\n", "second", 0.0) == "1.2"  # counted from the log, not a cache
    shutil.rmtree(ring_dir / ".history")
    assert WorldclassStore(tmp_path).history(ring_dir, "p01").add("v3\n", "again", 0.0) == "1.1"


def test_a_store_without_a_format_says_so(root):
    store = DataStore(Layout(Path(root), "forms-x"))
    with pytest.raises(NotImplementedError):
        store.parse("", "a", Path("x"), (0, 0))


def test_a_damaged_history_log_hides_no_version_and_overwrites_none(tmp_path):
    ring = tmp_path / "ring01"
    history = WorldclassStore(tmp_path).history(ring, "p01")
    assert [history.add(text, text, 0.0) for text in ("one\n", "two\n")] == ["1.1", "1.2"]
    log = history.dir / "log"
    # hand edits that are JSON but not entries, nested past Python's parser (it failed every save of the
    # division, as 'could not save', with a traceback), a Latin-1 byte, and a last line cut short by a crash
    log.write_bytes(log.read_bytes() + b'[1]\n{"number": "1.9"}\n"x"\n' + b"[" * 2000 + b"]" * 2000 + b"\n"
                    + b'{"number": "1.3", "datetime": "caf\xe9')
    fresh = WorldclassStore(tmp_path).history(ring, "p01")
    assert [e["number"] for e in fresh.entries()] == ["1.1", "1.2"]
    assert fresh.add("three\n", "three", 0.0) == "1.3"
    assert [e["number"] for e in fresh.entries()] == ["1.1", "1.2", "1.3"] and fresh.text("1.3") == "three\n"
    log.write_text("")  # the log lost: the versions on disk still count
    again = WorldclassStore(tmp_path).history(ring, "p01")
    assert again.add("four\n", "four", 0.0) == "1.4" and again.text("1.2") == "two\n"

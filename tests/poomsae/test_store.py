"""The FreeScore layer's file side, on real files in a temporary data root."""

from __future__ import annotations

import codecs
import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.poomsae import store
from freescore.poomsae.ids import RequestError
from freescore.poomsae.layout import Layout


def test_write_file_is_atomic_with_upstream_mode(tmp_path):
    path = tmp_path / "div.p01.txt"
    first = store.write_file(path, "a\n")
    assert path.read_text() == "a\n" and stat.S_IMODE(path.stat().st_mode) == 0o666
    second = store.write_file(path, "ab\n")
    assert first != second == store.stamp(path)
    assert [p.name for p in tmp_path.iterdir()] == ["div.p01.txt"]  # no temp file left behind
    assert store.stamp(tmp_path / "missing") is None


def test_discovery(tmp_path):
    layout = Layout(tmp_path, "forms-grassroots")
    base = layout.tournament("t")
    for folder in ("ring02", "ring01", "ring10", "staging", "ring0", "ringx"):
        (base / folder).mkdir(parents=True)
    (base / "ring99").write_text("a file, not a ring")
    assert store.ring_numbers(base) == [1, 2, 10]
    ring = layout.ring_dir("t", 1)
    for name in ("div.p02.txt", "div.p01.txt", "div..x.txt", "progress.txt", "div.p01.txt,v"):
        (ring / name).write_text("x")
    (ring / "div.d.txt").mkdir()
    found = store.scan_divisions(layout, ring)
    assert list(found) == ["p01", "p02"]
    assert found["p01"] == (ring / "div.p01.txt", store.stamp(ring / "div.p01.txt"))
    assert store.scan_divisions(layout, layout.ring_dir("t", 5)) == {}
    assert store.ring_numbers(layout.tournament("none")) == []


def test_tournament_folders_stay_in_the_root(tmp_path):
    root = tmp_path / "data"
    (root / "real").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "escape")
    layout = Layout(root, "forms-worldclass")
    assert store.tournament_exists(layout, "real")
    assert not store.tournament_exists(layout, "escape")
    assert not store.tournament_exists(layout, "nothing") and not store.tournament_exists(layout, "../data")
    assert store.tournament_folder(layout, "new") == root / "new" / "forms-worldclass"
    with pytest.raises(RequestError):
        store.tournament_folder(layout, "escape")


@given(st.text())
def test_hand_edited_text_decodes_with_or_without_a_bom(text):
    data = text.encode("utf-8")
    assert store.decode_text(codecs.BOM_UTF8 + data) == text  # one BOM is dropped, the text stays
    assert store.decode_text(data) == text.removeprefix("\ufeff")


def test_bytes_that_are_not_utf8_are_latin1():
    assert store.decode_text("Añá LIME\n".encode("latin-1")) == "Añá LIME\n"

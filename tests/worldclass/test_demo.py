"""The demo tournament: written once in upstream's format, never over anything already there."""

from __future__ import annotations

from pathlib import Path

from freescore.worldclass import demo
from freescore.worldclass.divfile import format_division, parse_division, parse_progress
from freescore.worldclass.logic import Worldclass
from freescore.worldclass.scoring import compute
from freescore.worldclass.store import WorldclassStore


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_demo_is_two_rings_of_valid_divisions(tmp_path):
    assert demo.ensure(tmp_path) is True
    forms = tmp_path / "demo" / "forms-worldclass"
    assert sorted(p.name for p in forms.iterdir()) == ["ring01", "ring02"]
    for ring, divisions in demo.divisions().items():
        ring_dir = forms / f"ring{ring:02d}"
        assert parse_progress((ring_dir / "progress.txt").read_text())["current"] == divisions[0].name
        for div in divisions:
            text = (ring_dir / f"div.{div.name}.txt").read_text()
            parsed = parse_division(text, div.name)
            assert format_division(parsed) == text  # the exact upstream layout, round trip
            assert parsed.athletes and parsed.order[parsed.round] == list(range(len(parsed.athletes)))
            assert compute(parsed).pending[parsed.round] == parsed.order[parsed.round]  # nobody scored yet
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no building folder left behind
    assert Worldclass(WorldclassStore(tmp_path)).exists("demo")


def test_an_existing_demo_is_never_touched(tmp_path):
    assert demo.ensure(tmp_path)
    p01 = tmp_path / "demo" / "forms-worldclass" / "ring01" / "div.p01.txt"
    p01.write_text(p01.read_text().replace("Male Cadets", "Our own cadets"))
    (tmp_path / "demo" / "forms-worldclass" / "ring02" / "div.p05.txt").unlink()
    before = files(tmp_path)
    assert demo.ensure(tmp_path) is False
    assert files(tmp_path) == before


def test_an_empty_folder_or_a_file_named_demo_counts_as_existing(tmp_path):
    (tmp_path / "a" / "demo").mkdir(parents=True)
    assert demo.ensure(tmp_path / "a") is False
    assert list((tmp_path / "a" / "demo").iterdir()) == []
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "demo").write_text("mine")
    assert demo.ensure(tmp_path / "b") is False
    assert (tmp_path / "b" / "demo").read_text() == "mine"

"""Division file and progress.txt round trips against the upstream fixtures and generated models."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.worldclass import scoring
from freescore.worldclass.divfile import (
    Athlete,
    Division,
    DivisionFormatError,
    FormScore,
    Score,
    format_division,
    format_progress,
    pad,
    parse_division,
    parse_progress,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "forms-worldclass"
DIV_FILES = sorted(FIXTURES.glob("ring*/div.*.txt"))
BYTE_IDENTICAL = {"p01", "p03", "p04"}


def divid(path: Path) -> str:
    return path.name[len("div."):-len(".txt")]


def test_fixtures_present():
    assert {divid(p) for p in DIV_FILES} == {"p01", "p02", "p03", "p04", "p10"}


@pytest.mark.parametrize("path", DIV_FILES, ids=divid)
def test_fixture_round_trip(path):
    text = path.read_text()
    div = parse_division(text, divid(path))
    out = format_division(div)
    if divid(path) in BYTE_IDENTICAL:
        assert out == text
    again = parse_division(out, div.name)
    assert again == div
    assert format_division(again) == out
    r1 = scoring.division_json(div, scoring.compute(div), 1)
    r2 = scoring.division_json(again, scoring.compute(again), 1)
    assert r1 == r2


def test_p10_quirks_survive():
    div = parse_division((FIXTURES / "ring02/div.p10.txt").read_text(), "p10")
    assert div.state == "score"  # no state line: defaults
    assert div.athletes[1].name == "Sonnal, Steven, Cody "  # trailing space kept
    form = div.athletes[1].scores["finals"][0]
    # two 3-value p lines: the last one wins entirely
    assert form.penalty == {"bounds": 0.0, "timelimit": 0.3, "restart": 1.0, "misconduct": 0.0, "time": 0.0}
    out = format_division(div)
    assert out.startswith("# state=score\n# current=0\n# form=0\n# round=finals\n# judges=3\n")
    assert "\tfinals\tf1\tp\t0.0\t0.3\t1.0\t0.0\t0.0\n" in out
    assert "# " + "-" * 60 + "\n# finals\n# " + "-" * 60 + "\n" in out


def test_p02_empty_score_lines_and_info():
    div = parse_division((FIXTURES / "ring01/div.p02.txt").read_text(), "p02")
    assert div.athletes[0].info == {"rank": "1st Dan"}
    assert all(not s.started for f in div.athletes[0].scores["finals"] for s in f.judges)
    assert format_division(div).splitlines()[-1] == "Sujatha\trank=1st Dan"


def test_unknown_header_kept_and_crlf():
    text = "# state=score\r\n# current=0\n# form=0\n# round=finals\n# judges=3\n# colour=blue=ish\n" \
           "# description=D\n# forms=finals:A\n# " + "-" * 60 + "\n# finals\n# " + "-" * 60 + "\nAnn\n"
    div = parse_division(text, "x1")
    assert div.extra == {"colour": "blue=ish"}
    assert "# colour=blue=ish\n" in format_division(div)


@pytest.mark.parametrize("text", [
    "# current=0\n# form=0\n# round=finals\n# judges=3\n# description=D\n",  # no forms
    "# current=0\n# form=0\n# round=finals\n# judges=3\n# description=D\n# forms=finals:A\n"
    "# finals\nAnn\n\tprelim\tf1\tr\t0\t0\t0\t0\t0\n",  # round mismatch
    "# current=0\n# form=0\n# round=finals\n# judges=3\n# description=D\n# forms=finals:A\n"
    "# finals\nAnn\n\tfinals\tf1\tr\tx\t0\t0\t0\t0\n",  # not a number
])
def test_integrity_errors(text):
    with pytest.raises(DivisionFormatError):
        parse_division(text, "bad")


def test_progress_round_trip():
    assert parse_progress("# current=0\n") == {"current": "0"}
    keys = {"name": "1", "current": "p01", "divisions": [], "file": "x"}
    assert format_progress(keys) == "# current=p01\n# name=1\n"
    assert parse_progress(format_progress(keys)) == {"current": "p01", "name": "1"}


# -- property: anything freescore writes reads back equal ---------------------------

text_st = st.text(alphabet=string.ascii_letters + string.digits + " ,.&'-éü", min_size=0, max_size=12)
name_st = st.from_regex(r"[A-Za-z][A-Za-z ,.'-]{0,15}", fullmatch=True)
mark = st.integers(min_value=0, max_value=20).map(lambda n: n / 10)


@st.composite
def divisions(draw):
    judges = draw(st.sampled_from([3, 5, 7]))
    rounds = draw(st.sampled_from([["finals"], ["semfin", "finals"], ["prelim", "semfin", "finals"]]))
    forms = {r: draw(st.lists(st.sampled_from(["Koryo", "Taegeuk 4", "draw-12"]), min_size=1, max_size=2))
             for r in rounds}
    names = draw(st.lists(name_st, min_size=1, max_size=6, unique=True))
    athletes = [Athlete(name=n, info=draw(st.dictionaries(st.sampled_from(["rank", "club", "age"]),
                                                             text_st.filter(lambda t: "\t" not in t), max_size=2)))
                for n in names]
    div = Division(
        name="p01", description=draw(text_st), state=draw(st.sampled_from(["score", "display"])),
        current=draw(st.integers(0, len(names) - 1)), form=draw(st.integers(0, 1)), round=rounds[0],
        judges=judges, autopilot=draw(st.sampled_from([None, "on", "off"])), forms=forms, athletes=athletes,
        tags=draw(st.sampled_from([None, ["a", "b"], {"k": 1}])),
        extra=draw(st.dictionaries(st.sampled_from(["colour", "venue"]), text_st, max_size=2)),
    )
    rng = random.Random(draw(st.integers(0, 1000)))
    # the file lists every athlete in the first round, in athletes[] order
    div.order[rounds[0]] = list(range(len(names)))
    for r in rounds[1:]:
        if draw(st.booleans()):
            div.order[r] = rng.sample(range(len(names)), draw(st.integers(1, len(names))))
    pad(div)
    for r, order in div.order.items():
        for a in order:
            for form in div.athletes[a].scores[r]:
                if draw(st.booleans()):
                    form.judges = [Score(*(draw(mark) for _ in range(5))) for _ in range(judges)]
                if draw(st.integers(0, 4)) == 0:
                    form.penalty = {"bounds": 0.3, "timelimit": 0.0, "restart": draw(mark), "misconduct": 1.0,
                                    "time": 0.0}
                if draw(st.integers(0, 5)) == 0:
                    form.decision = {draw(st.sampled_from(["withdraw", "disqualify"])): 1}
    if draw(st.booleans()):
        div.placement = scoring.compute(div).placement
    return div


@settings(max_examples=150, deadline=None)
@given(divisions())
def test_written_models_read_back_equal(div):
    text = format_division(div)
    again = parse_division(text, div.name)
    assert again == div
    assert format_division(again) == text


def test_form_score_default_has_no_data():
    assert not FormScore().has_data()

"""The division file (§10): upstream's exact bytes, and anything JSON read back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.freestyle.divfile import DivisionFormatError, format_division, parse_division
from tests.freestyle.examples import FORMS


@pytest.mark.parametrize("path", sorted(FORMS.glob("*/*/div.*.txt")), ids=lambda p: f"{p.parent.parent.name}/"
                         f"{p.parent.name}/{p.name}")
def test_upstream_files_round_trip_byte_for_byte(path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_division(parse_division(text)) == text


def test_the_format_is_json_xs_pretty_canonical() -> None:
    text = format_division({"b": [], "a": {}, "c/d": "é/\"\n", "n": [0.30000000000000004, 9.0, 1, float("nan")]})
    assert text == ('{\n   "a" : {},\n   "b" : [],\n   "c/d" : "é/\\"\\n",\n   "n" : [\n      0.3,\n      9,\n'
                    '      1,\n      null\n   ]\n}\n')


def test_readers_accept_crlf_and_refuse_what_is_not_an_object() -> None:
    assert parse_division('{\r\n "judges": 3\r\n}\r\n') == {"judges": 3}
    for bad in ("[1]", "{", "NaN", '{"x": NaN}'):
        with pytest.raises(DivisionFormatError):
            parse_division(bad)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_formatting_is_stable_after_one_round_trip(obj: dict) -> None:
    once = format_division(obj)
    assert format_division(parse_division(once)) == once

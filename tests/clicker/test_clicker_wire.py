"""The clicker wire format: tokenization, lenient integers, reply lines."""

import json
import random
import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.clicker import wire
from freescore.clicker.wire import DRAFT_1, DRAFT_2, IgnoredInput, Listen, Register, Score

JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
REFERENCE = re.compile(f"^[{re.escape(JS_SPACE)}]*([+-]?)([0-9]+)")


def reference_parse_int(token: str) -> str | None:
    m = REFERENCE.match(token)
    if not m:
        return None
    digits = m.group(2).lstrip("0") or "0"
    return "-" + digits if m.group(1) == "-" and digits != "0" else digits


@pytest.mark.parametrize(
    "token,expected",
    [
        ("5", "5"), ("+5", "5"), ("-0", "0"), ("007", "7"), ("-007", "-7"), ("12abc", "12"), ("1.9", "1"),
        ("1e3", "1"), ("0x10", "0"), ("\t 42", "42"), ("\u00a0-3", "-3"), ("", None), ("abc", None),
        ("+", None), ("-", None), ("+-1", None), ("--1", None), ("\u0663", None), ("1\u0663", "1"),
        ("-2147483648", "-2147483648"), ("99999999999999999999999", "99999999999999999999999"),
    ],
)
def test_parse_int_examples(token, expected):
    assert wire.parse_int(token) == expected


@settings(deadline=None)
@given(st.text())
def test_parse_int_matches_reference_on_any_text(token):
    assert wire.parse_int(token) == reference_parse_int(token)


@settings(deadline=None)
@given(
    st.sampled_from(["", " ", "\t", "\u3000", "\ufeff"]),
    st.sampled_from(["", "+", "-"]),
    st.text(alphabet="0", max_size=3),
    st.integers(min_value=0),
    st.text(alphabet="abc.e x-+\u0663", max_size=5),
)
def test_parse_int_lenient_forms(space, sign, zeros, n, tail):
    value = wire.parse_int(space + sign + zeros + str(n) + tail)
    expected = "-" + str(n) if sign == "-" and n != 0 else str(n)
    assert value == expected


@settings(deadline=None)
@given(st.sampled_from(["", "-"]), st.from_regex(r"\A[1-9][0-9]{0,6000}\Z"))
def test_big_integers_echo_exactly(sign, digits):
    """Decimal strings beyond 2**53 and beyond Python's 4300-digit int() limit come back unchanged."""
    n = sign + digits
    reply = wire.format_scored(wire.parse(f"SCORE 1 {n} 2"))  # type: ignore[arg-type]
    assert reply == f"SCORED 1 {n}"


def test_huge_digit_run_beyond_python_int_limit():
    digits = "9" * 60000
    assert wire.parse(f"SCORE {digits} 1") == Score(None, digits, "1")


@settings(deadline=None)
@given(st.integers(min_value=-(10**60), max_value=10**60), st.integers(min_value=-(10**60), max_value=10**60))
def test_int_key_orders_numerically(a, b):
    assert (wire.int_key(str(a)) < wire.int_key(str(b))) == (a < b)
    assert (wire.int_key(str(a)) == wire.int_key(str(b))) == (a == b)


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_parse_int_agrees_with_javascript():
    rng = random.Random(7)
    alphabet = "0123456789+- .eExabc\t\u00a0\u3000\u0663"
    tokens = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 8))) for _ in range(3000)]
    script = "const t=JSON.parse(require('fs').readFileSync(0,'utf8'));" \
        "console.log(JSON.stringify(t.map(x=>{const v=parseInt(x,10);return Number.isNaN(v)?null:String(v)})))"
    out = subprocess.run(["node", "-e", script], input=json.dumps(tokens), capture_output=True, text=True,
                         check=True, timeout=30).stdout
    js = json.loads(out)
    for token, expected in zip(tokens, js, strict=True):
        ours = wire.parse_int(token)
        if expected == "0" and ours is not None and ours.startswith("-"):
            raise AssertionError(token)
        assert ours == ("0" if expected == "-0" else expected), repr(token)


@pytest.mark.parametrize(
    "text,command",
    [
        ("REGISTER", Register("")),
        ("REGISTER\r\n", Register("")),
        ("register\n\r\n", Register("")),
        ("REGISTER ", Register("")),
        ("REGISTER  x", Register("")),
        ("REGISTER abc extra tokens", Register("abc")),
        ("SCORE 1 1000 5", Score("1", "1000", "5")),
        ("score 2 -5 6", Score("2", "-5", "6")),
        ("SCORE 3 12abc 7x", Score("3", "12", "7")),
        ("SCORE +4 1.9 1", Score("4", "1", "1")),
        ("SCORE 1 2 3 4 5", Score("1", "2", "3")),
        ("SCORE 1 2 3 x", Score("1", "2", "3")),
        ("SCORE 1000 5", Score(None, "1000", "5")),
        ("Score -0 +0", Score(None, "0", "0")),
        ("SUBSCRIBE 000123 004567", Listen(("000123", "004567"), DRAFT_2)),
        ("SUBSCRIBE 000123,004567", Listen(("000123", "004567"), DRAFT_2)),
        ("subscribe ,000123,,000123  004567,", Listen(("000123", "004567"), DRAFT_2)),
        ("SUBSCRIBE", Listen((), DRAFT_2)),
        ("LISTEN 4211 004211", Listen(("4211", "004211"), DRAFT_1)),
    ],
)
def test_parse_commands(text, command):
    assert wire.parse(text) == command


@pytest.mark.parametrize(
    "text",
    ["", "\r\n", "HELLO", " REGISTER", "REGISTER\t", "SCORE", "SCORE 1", "SCORE a 1 2", "SCORE 1 2 x",
     "SCORE  1 2 3", "SCORE 1 2 ", "SCORE 1  2", "SCORED 1 2", "x" * 65536],
)
def test_ignored_input(text):
    with pytest.raises(IgnoredInput):
        wire.parse(text)


@settings(deadline=None)
@given(st.sampled_from(["REGISTER", "register", "Register"]),
       st.text(alphabet=st.characters(blacklist_characters=" \r\n"), max_size=40),
       st.one_of(st.just(""), st.text(max_size=20).map(lambda t: " " + t)),
       st.sampled_from(["", "\r", "\n", "\r\n"]))
def test_register_secret_is_the_token_after_the_first_space(verb, secret, rest, newline):
    """Spec 2 and 4.1: the secret is token 1 (empty after a double space: none); later tokens are ignored."""
    assert wire.parse(verb + " " + secret + rest + newline) == Register(secret)


def test_listen_keeps_at_most_max_ids():
    ids = [f"{i:06d}" for i in range(100)]
    assert wire.parse("SUBSCRIBE " + " ".join(ids)).ids == tuple(ids[:64])  # type: ignore[union-attr]
    assert wire.parse("LISTEN " + ",".join(ids), max_ids=3).ids == tuple(ids[:3])  # type: ignore[union-attr]


@settings(deadline=None)
@given(st.lists(st.text(alphabet="0123,", max_size=4), max_size=80))
def test_split_ids_properties(tokens):
    ids = wire.split_ids(tokens, 64)
    assert len(ids) == len(set(ids)) <= 64
    assert all(i and "," not in i for i in ids)
    flat = [p for t in tokens for p in t.split(",") if p]
    assert list(ids) == list(dict.fromkeys(flat))[:64]


def test_reply_lines():
    assert wire.format_registered("004211", "s") == "REGISTERED 004211 s"
    assert wire.format_scored(Score("1", "-1283741", "1")) == "SCORED 1 -1283741"
    assert wire.format_scored(Score(None, "1000", "5")) == "SCORED 1000"
    assert wire.format_relay(DRAFT_2, "004211", "-1283741", "1") == "SCORE -1283741 1 004211"
    assert wire.format_relay(DRAFT_1, "004211", "-1283741", "1") == "SCORE -1283741 004211 1"
    assert wire.format_connect("004211") == "CONNECT 004211"
    assert wire.format_disconnect("004211") == "DISCONNECT 004211"
    assert wire.format_connect_reply([]) == ["CONNECT"]
    assert wire.format_connect_reply(["000001", "000002"]) == ["CONNECT 000001 000002"]


def test_connect_reply_lines_stay_under_125_bytes():
    ids = [f"{i:06d}" for i in range(64)]
    lines = wire.format_connect_reply(ids)
    assert all(len(line.encode()) < 125 for line in lines)
    assert [i for line in lines for i in line.split(" ")[1:]] == ids


@settings(deadline=None)
@given(st.text(max_size=200))
def test_parse_never_fails_otherwise(text):
    try:
        wire.parse(text)
    except IgnoredInput:
        pass


SCORE_TOKEN = st.one_of(
    st.from_regex(r"\A[0-9]{1,25}\Z"),  # what devices send, leading zeros included
    st.text(alphabet="0123456789+-\u0663\u00a0xe.", min_size=1, max_size=8),  # the lenient and the invalid
)


@given(SCORE_TOKEN, SCORE_TOKEN, SCORE_TOKEN, st.sampled_from(["SCORE", "score", "Score"]),
       st.sampled_from(["", "\r\n"]))
def test_three_argument_score_is_parse_int_of_each_token(msg_id, timestamp, score, verb, newline):
    """The plain-digit shortcut in `parse` gives what the general path (JavaScript parseInt per token) gives."""
    values = [reference_parse_int(t) for t in (msg_id, timestamp, score)]
    text = f"{verb} {msg_id} {timestamp} {score}{newline}"
    if None in values:
        with pytest.raises(IgnoredInput):
            wire.parse(text)
        return
    parsed = wire.parse(text)
    assert type(parsed) is Score and parsed == Score(*values)

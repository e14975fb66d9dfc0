"""The pure pieces of the protocol kit: close codes, HTTP errors, the token check, the token bucket, the limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.auth import bearer_matches, token_matches
from freescore.config import ConfigError, parse
from freescore.ratelimit import TokenBucket
from freescore.settings import WebSocketSettings
from freescore.wireformat import CloseCode, HttpError, json_text, loads_strict

LISTEN = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'


def test_close_codes_are_rfc_6455s():
    assert {c.name: int(c) for c in CloseCode} == {
        "NORMAL": 1000, "GOING_AWAY": 1001, "PROTOCOL_ERROR": 1002, "UNSUPPORTED_DATA": 1003,
        "INVALID_PAYLOAD": 1007, "POLICY_VIOLATION": 1008, "MESSAGE_TOO_BIG": 1009, "INTERNAL_ERROR": 1011,
        "TRY_AGAIN_LATER": 1013,
    }
    assert f"{CloseCode.GOING_AWAY}" == "1001"  # log lines show the number


any_text = st.text(st.characters() | st.characters(categories=["Cs"]))
"""Lone surrogates included: JSON's `"\\ud800"` decodes to one."""
any_json = st.recursive(st.none() | st.integers() | any_text,
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3))


@given(any_json)
def test_json_text_is_always_utf8_and_means_what_the_ascii_form_means(value):
    text = json_text(value)
    text.encode("utf-8")
    assert json.loads(text) == json.loads(json.dumps(value))
    plain = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if not any("\ud800" <= c <= "\udfff" for c in plain):
        assert text == plain  # well-formed text is written as it was


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a":-Infinity}', "1e999", "[-2e308]", "1E+400"])
def test_loads_strict_refuses_what_would_go_out_as_nan_or_infinity(text):
    with pytest.raises(ValueError):
        loads_strict(text)
    assert loads_strict("[1.5e308, -0.0, 1e-999]") == [1.5e308, -0.0, 0.0]
    if text[-1].isdigit():  # kept verbatim, never re-encoded: JSON.parse reads it (as Infinity)
        assert loads_strict(text, reencoded=False) in (float("inf"), -float("inf"))


def test_loads_strict_max_depth_refuses_nesting_past_it_and_python_s_own_limit_as_value_error():
    for depth, limit in ((101, 100), (2000, None), (100000, 100)):  # past the parser: no RecursionError
        with pytest.raises(ValueError):
            loads_strict("[" * depth + "]" * depth, max_depth=limit)
    for text in ("[" * 100 + "]" * 100, '{"a":' * 99 + '"[[[[{{{{"' + "}" * 99, "1"):
        assert loads_strict(text, max_depth=100) == json.loads(text)


@given(any_json)
def test_json_text_with_json_dumps_options_is_utf8_and_reads_back_the_same(value):
    text = json_text(value, sort_keys=True, indent=3, separators=(",", " : "))  # a division file's form
    text.encode("utf-8")
    assert json.loads(text) == json.loads(json.dumps(value))  # (a pair of lone surrogates reads as one character)


def test_http_error_carries_status_message_headers_and_the_json_body():
    e = HttpError(405, "use POST", {"allow": "POST"})
    assert (e.status, e.message, e.headers, e.content_type) == (405, "use POST", {"allow": "POST"}, "application/json")
    assert json.loads(e.body()) == {"error": "use POST"}
    assert HttpError(404, "é").body() == '{"error":"é"}'.encode()


def test_bearer_token():
    assert bearer_matches("Bearer s3cret", "s3cret")
    assert bearer_matches("bearer  s3cret ", "s3cret")
    assert bearer_matches(b"Bearer s3cret", "s3cret")
    assert not bearer_matches("Bearer s3cre", "s3cret")
    assert not bearer_matches("Basic s3cret", "s3cret")
    assert not bearer_matches("Bearer", "s3cret")
    assert not bearer_matches(None, "s3cret")


def test_token_matches_only_the_same_string():
    assert token_matches("k", "k") and token_matches("ключ", "ключ")
    assert not token_matches("k ", "k") and not token_matches(None, "k") and not token_matches(1, "1")
    assert not token_matches("\ud800", "k")  # a lone surrogate from JSON is a string too, never a match


def test_token_bucket_spends_and_refills():
    b = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5) and not b.take(0.5)  # 0.5 s at 2/s = one token
    assert [b.take(100.0) for _ in range(4)] == [True, True, True, False]  # never more than burst


def test_token_bucket_earns_nothing_from_a_clock_stepping_back():
    b = TokenBucket(rate=1.0, burst=1, now=100.0)
    assert b.take(100.0)
    assert not b.take(50.0) and not b.take(100.5)
    assert b.take(101.0)


@given(st.lists(st.floats(0, 10), max_size=50), st.floats(0.1, 100), st.integers(1, 20))
def test_token_bucket_never_allows_more_than_burst_plus_what_time_earned(steps, rate, burst):
    b = TokenBucket(rate, burst, 0.0)
    now, allowed = 0.0, 0
    for step in steps:
        now += step
        allowed += b.take(now)
    assert allowed <= burst + rate * now + 1e-6


def test_limits_default_to_the_base_and_check_their_ranges():
    s = WebSocketSettings().resolve_limits(frozenset())
    assert (s.max_frame, s.max_message, s.frame_limit) == (0, 1048576, 1048576)
    assert (s.max_connections, s.keepalive, s.allowed_origins) == (10000, 30, ("*",))
    assert WebSocketSettings(max_frame=100, max_message=50).frame_limit == 50
    for bad in ({"max_message": 0}, {"max_frame": -1}, {"open_timeout": 0}, {"keepalive": -1},
                {"allowed_origins": ()}, {"max_connections": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            WebSocketSettings(**bad).resolve_limits(frozenset())


@pytest.mark.parametrize("table,keys,expected", [
    ('[clicker]\nping_interval = 5.0\n', ("keepalive", "max_message", "close_timeout"), (5.0, 65536, 1.0)),
    ('[clicker]\nping_interval = 5.0\nkeepalive = 7.0\n', ("keepalive",), (7.0,)),
    ('[clicker]\nmax_connections = 3\nallowed_origins = ["Espruino"]\n', ("max_connections", "allowed_origins"),
     (3, ("Espruino",))),
    ('[fedmsg]\nmax_inbound_message = 1000\n', ("max_message", "frame_limit"), (1000, 1000)),
    ('[fedmsg]\nkeepalive = 0\n', ("keepalive",), (0.0,)),
    ('[gateway]\napi_uri = "http://x"\ntimeout = 10000\nhook_timeout = 2000\n', ("keepalive", "open_timeout"),
     (5.0, 7.0)),
    ('[gateway]\napi_uri = "http://x"\ntimeout = 10\n', ("keepalive", "frame_limit", "close_timeout"),
     (1.0, 32768, 5.0)),
    ('[events]\nsender_token = "t"\nping_interval = 1000\nmax_clients = 10\nmax_sender_packet = 20000\n',
     ("keepalive", "max_connections", "max_message"), (1.0, 1020, 20000)),
    ('[worldclass]\ndata = "wc"\n', ("keepalive", "max_message", "max_connections"), (60.0, 1048576, 10000)),
    ('[freestyle]\ndata = "fs"\nmax_message = 4096\n', ("keepalive", "frame_limit"), (60.0, 4096)),
])
def test_each_protocol_maps_its_own_keys_onto_the_limits(tmp_path, table, keys, expected):
    settings = next(iter(parse(LISTEN + table, tmp_path / "f.toml").services.values()))
    assert isinstance(settings, WebSocketSettings)
    assert tuple(getattr(settings, k) for k in keys) == expected


def test_a_bad_limit_names_the_table_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"clicker\.max_connections: must be at least 1"):
        parse(LISTEN + "[clicker]\nmax_connections = 0\n", tmp_path / "f.toml")
    with pytest.raises(ConfigError, match=r"fedmsg\.keepalive: must be 0 \(off\) or positive"):
        parse(LISTEN + "[fedmsg]\nkeepalive = -1\n", tmp_path / "f.toml")

"""Pure wire layer: hook bodies, the admission rule, credentials, push requests, auth."""

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.gateway import wire


def test_connect_and_close_bodies():
    assert json.loads(wire.connect_body("http://h/@connections/x", 30000)) == {
        "code": "NEW_CONNECTION", "ws_uri": "http://h/@connections/x", "timeout": 30000}
    assert json.loads(wire.close_body("http://h/@connections/x")) == {
        "code": "CONNECTION_CLOSE", "ws_uri": "http://h/@connections/x"}


def test_urls_without_scheme_and_trailing_slash():
    assert wire.with_scheme("localhost:3000/websocket") == "http://localhost:3000/websocket"
    assert wire.with_scheme("https://a.example/x/") == "https://a.example/x"
    assert wire.ws_uri("http://h/@connections/", "id") == "http://h/@connections/id"
    assert wire.hook_url("http://b/websocket", "id") == "http://b/websocket/id"
    assert wire.valid_http_url("http://b/websocket")
    assert not wire.valid_http_url("ftp://b")


@pytest.mark.parametrize("status, body, expected", [
    (200, b'{"code":"OK"}', wire.ADMIT),
    (204, b'{"code": "OK", "extra": 1}', wire.ADMIT),
    (200, b"", wire.DENY_FORBIDDEN),
    (200, b'{"code":"NO"}', wire.DENY_FORBIDDEN),
    (200, b"OK", wire.DENY_FORBIDDEN),
    (200, b'["OK"]', wire.DENY_FORBIDDEN),
    (200, b"\xff\xfe", wire.DENY_FORBIDDEN),
    (401, b'{"code":"OK"}', wire.DENY_UNAUTHORIZED),
    (403, b"", wire.DENY_FORBIDDEN),
    (404, b"", wire.DENY_FORBIDDEN),
    (500, b'{"code":"OK"}', wire.DENY_BACKEND_ERROR),
    (503, b"", wire.DENY_BACKEND_ERROR),
    (302, b"", wire.DENY_BACKEND_ERROR),
])
def test_admission_rule(status, body, expected):
    assert wire.admission(status, body) == expected


def test_admission_of_json_nested_deeper_than_python_reads_is_forbidden():
    for body in (b"[" * 60000, b'{"a":' * 60000):  # a RecursionError in json.loads
        assert wire.admission(200, body) == wire.DENY_FORBIDDEN


@given(st.integers(100, 599), st.binary(max_size=64))
def test_admission_never_raises_and_admits_only_2xx(status, body):
    d = wire.admission(status, body)
    assert d.admitted == (200 <= status < 300 and d.code == "OK")
    assert d.admitted or d.status in (401, 403, 502)


def test_deny_bodies():
    assert json.loads(wire.deny_body(401)) == {"code": "UNAUTHORIZED"}
    assert json.loads(wire.deny_body(504)) == {"code": "BACKEND_TIMEOUT"}


def test_credential_sources_in_order():
    c = wire.credential({"authorization": "Bearer a"}, ["Authorization", "x"], {"token": ["q"]}, "token")
    assert (c.value, c.subprotocol, c.source) == ("Bearer a", "Authorization", "header")
    c = wire.credential({}, ["Authorization", "1234"], {"token": ["q"]}, "token")
    assert (c.value, c.subprotocol, c.source) == ("1234", "Authorization", "subprotocol")
    c = wire.credential({}, [], {"token": ["abc"]}, "token")
    assert (c.value, c.subprotocol, c.source) == ("abc", None, "query")
    c = wire.credential({}, ["Authorization"], {}, "token")
    assert (c.value, c.subprotocol, c.source) == ("None", "Authorization", "none")
    c = wire.credential({}, ["chat"], {"token": [""]}, "token")
    assert (c.value, c.subprotocol) == ("None", None)
    assert wire.credential({}, [], {"token": ["abc"]}, "").value == "None"


def test_source_ip_trusts_only_configured_proxies():
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert wire.source_ip("1.2.3.4", "5.6.7.8", proxies) == "1.2.3.4"
    assert wire.source_ip("10.0.0.1", "5.6.7.8, 10.0.0.2", proxies) == "5.6.7.8"
    assert wire.source_ip("10.0.0.1", None, proxies) == "10.0.0.1"
    assert wire.source_ip("10.0.0.1", "10.1.1.1", proxies) == "10.1.1.1"


def test_push_commands():
    assert wire.push_command("PUT", None, b"hi", 10) == wire.PushSend(b"hi", False)
    assert wire.push_command("post", "application/json", b"{}", 10) == wire.PushSend(b"{}", False)
    assert wire.push_command("PUT", "application/octet-stream; x=y", b"\xff", 10) == wire.PushSend(b"\xff", True)
    assert wire.push_command("GET", None, b"", 10) == wire.PushInfo()
    assert wire.push_command("DELETE", None, b"", 10) == wire.PushClose()


@pytest.mark.parametrize("method, ctype, body, status, code", [
    ("PUT", None, b"x" * 11, 413, "MESSAGE_TOO_LONG"),
    ("POST", "application/octet-stream", b"x" * 11, 413, "MESSAGE_TOO_LONG"),
    ("PUT", "text/plain", b"\xff\xfe", 400, "BAD_REQUEST"),
    ("PATCH", None, b"", 405, "BAD_REQUEST"),
])
def test_push_errors(method, ctype, body, status, code):
    with pytest.raises(wire.PushError) as e:
        wire.push_command(method, ctype, body, 10)
    assert (e.value.status, e.value.code) == (status, code)
    assert json.loads(e.value.body())["code"] == code


@given(st.sampled_from(["PUT", "POST", "GET", "DELETE", "PATCH", "HEAD"]),
       st.one_of(st.none(), st.sampled_from(["application/octet-stream", "text/plain", "application/json"])),
       st.binary(max_size=40))
def test_push_command_total(method, ctype, body):
    try:
        cmd = wire.push_command(method, ctype, body, 32)
    except wire.PushError as e:
        assert e.status in (400, 405, 413)
    else:
        if isinstance(cmd, wire.PushSend):
            assert cmd.payload == body


def test_connection_id_from_path():
    assert wire.connection_id(["abc"]) == "abc"
    assert wire.connection_id(["abc", ""]) == "abc"
    assert wire.connection_id([]) is None
    assert wire.connection_id([""]) is None
    assert wire.connection_id(["a", "b"]) is None


def test_gone_error_matches_aws():
    e = wire.gone()
    assert (e.status, e.code, e.error_type) == (410, "NOT_FOUND", "GoneException")
    assert json.loads(e.body())["message"] == "The connection with the provided id no longer exists"


def test_hmac_auth():
    body = b"hello"
    sig = wire.signature("k", "1000", "put", "/@connections/x", body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert wire.hmac_ok("k", "1000", sig, "PUT", "/@connections/x", body, 1000 + 299)
    assert not wire.hmac_ok("k", "1000", sig, "PUT", "/@connections/x", body, 1000 + 301)
    assert not wire.hmac_ok("k", "1000", sig, "PUT", "/@connections/x", b"hellO", 1000)
    assert not wire.hmac_ok("k", "1000", sig, "POST", "/@connections/x", body, 1000)
    assert not wire.hmac_ok("other", "1000", sig, "PUT", "/@connections/x", body, 1000)
    assert not wire.hmac_ok("k", "soon", sig, "PUT", "/@connections/x", body, 1000)
    assert not wire.hmac_ok("k", None, sig, "PUT", "/@connections/x", body, 1000)
    assert not wire.hmac_ok("k", "1000", "sha256=\u00e9", "PUT", "/@connections/x", body, 1000)


def test_authenticate_either_credential():
    sig = wire.signature("k", "50", "GET", "/p/x", b"")
    hmac_headers = {wire.TIMESTAMP_HEADER: "50", wire.SIGNATURE_HEADER: sig}
    wire.authenticate({"authorization": "Bearer t"}, "GET", "/p/x", b"", 50, "t", "k")
    wire.authenticate(hmac_headers, "GET", "/p/x", b"", 50, "t", "k")
    wire.authenticate({}, "GET", "/p/x", b"", 50, None, None)
    with pytest.raises(wire.PushError) as e:
        wire.authenticate({"authorization": "Bearer x"}, "GET", "/p/x", b"", 50, "t", None)
    assert e.value.status == 401 and e.value.error_type == "UnauthorizedException"
    with pytest.raises(wire.PushError):
        wire.authenticate(hmac_headers, "GET", "/p/x", b"", 50, "t", None)


def test_info_body_iso_times():
    doc = json.loads(wire.info_body(0.5, 3600.25, "1.2.3.4", "ua"))
    assert doc == {"connectedAt": "1970-01-01T00:00:00.500Z", "identity": {"sourceIp": "1.2.3.4", "userAgent": "ua"},
                   "lastActiveAt": "1970-01-01T01:00:00.250Z"}

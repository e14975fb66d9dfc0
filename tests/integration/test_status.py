"""The HTTP root of a real `twistd -n freescore`: /status, /metrics, 404."""

import requests

from harness import raw_request

CONFIG = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[http]
cors_origin = "https://scores.example"
"""


def test_status_ok_with_cors(freescore):
    fs = freescore(CONFIG)
    r = requests.get(fs.url() + "/status", timeout=5)
    assert r.status_code == 200
    assert r.text == "OK"
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["access-control-allow-origin"] == "https://scores.example"


def test_metrics_prometheus_text(freescore):
    fs = freescore(CONFIG)
    r = requests.get(fs.url() + "/metrics", timeout=5)
    assert r.status_code == 200
    assert "# TYPE freescore_connections gauge" in r.text
    assert "# TYPE freescore_messages_in_total counter" in r.text


def test_unknown_path_is_json_404(freescore):
    fs = freescore(CONFIG)
    r = requests.get(fs.url() + "/no/such/thing", timeout=5)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert "error" in r.json()


def test_start_logs_where_it_listens_and_stops_cleanly(freescore):
    fs = freescore(CONFIG)
    assert fs.urls[0].startswith("http://127.0.0.1:")
    # twistd re-raises the signal it stopped on, as Unix daemons do.
    assert fs.stop() in (0, -15)
    assert "Server Shut Down." in fs.log()


LIMIT = CONFIG + "max_body = 2048\n"


def test_announced_oversize_body_is_refused_before_it_is_read(freescore):
    fs = freescore(LIMIT)
    reply = raw_request(fs.port(), b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"larger than 2048 bytes" in reply
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


def test_chunked_body_is_cut_off_at_the_limit(freescore):
    fs = freescore(LIMIT)
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    reply = raw_request(
        fs.port(), b"POST /status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", [chunk] * 64
    )
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    small = requests.post(fs.url() + "/nope", data=b"y" * 1000, timeout=5)
    assert small.status_code == 404  # under the limit: served as usual


def test_other_methods_on_status_and_metrics_are_a_json_405_naming_get_and_head(freescore):
    """They answered Twisted's HTML pages (501 "Huh?", or 405) where every other path answers JSON."""
    fs = freescore(CONFIG)
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "TRACE"):
        for path in ("/status", "/metrics"):
            r = requests.request(method, fs.url() + path, timeout=5)
            assert (r.status_code, r.headers["content-type"]) == (405, "application/json"), (method, path)
            assert r.json() == {"error": "method not allowed: use GET or HEAD"}
            assert r.headers["allow"] == "GET, HEAD"
    head = requests.head(fs.url() + "/metrics", timeout=5)
    assert (head.status_code, head.content) == (200, b"")


def test_oversize_body_announced_with_expect_100_continue_gets_the_413_and_no_100_after_it(freescore):
    """curl sends `Expect: 100-continue` before a large body; Twisted sent its 100 Continue after the 413."""
    fs = freescore(LIMIT)
    reply = raw_request(
        fs.port(), b"POST /nope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000000\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 413") and reply.endswith(b"larger than 2048 bytes\"}"), reply

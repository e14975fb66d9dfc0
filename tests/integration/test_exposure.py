"""What a listener shows: no query strings in the access log, /metrics and /status per listener (issue 12 item 5)."""

from __future__ import annotations

import requests

from freescore.config import parse


def test_access_log_has_paths_without_query_strings(freescore):
    fs = freescore("""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"
""")
    r = requests.get(
        fs.url() + "/status?token=SECRET-IN-QUERY&x=1",
        headers={"Referer": "https://scores.example/page?token=SECRET-IN-REFERER"}, timeout=5,
    )
    assert r.text == "OK"
    line = fs.wait_log(r'"GET /status HTTP/1.1" 200')
    assert '"https://scores.example/page"' in line
    assert "SECRET" not in fs.log()


def test_metrics_and_status_are_switched_per_listener(freescore):
    fs = freescore("""
[[listen]]
name = "public"
endpoint = "tcp:0:interface=127.0.0.1"
metrics = false
status = false

[[listen]]
name = "local"
endpoint = "tcp:0:interface=127.0.0.1"
""")
    public, local = fs.url(0), fs.url(1)
    assert requests.get(public + "/metrics", timeout=5).status_code == 404
    assert requests.get(public + "/status", timeout=5).status_code == 404
    assert "freescore_connections" in requests.get(local + "/metrics", timeout=5).text
    assert requests.get(local + "/status", timeout=5).text == "OK"


def test_metrics_default_to_loopback_listeners_only_and_status_to_every_listener():
    cfg = parse("""
[[listen]]
endpoint = "tcp:443"

[[listen]]
endpoint = "tcp6:8443:interface=\\\\:\\\\:"

[[listen]]
endpoint = "tcp:9100:interface=127.0.0.1"

[[listen]]
endpoint = "tcp:9101:interface=0.0.0.0"
metrics = true
""")
    assert [lst.serves_metrics for lst in cfg.listeners] == [False, False, True, True]
    assert all(lst.status for lst in cfg.listeners)

"""The HTTP root of a real `twistd -n freescore`: /status, /metrics, 404."""

import requests

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

"""A real `twistd -n freescore` with `[hub] backend = "redis"`: /status follows Redis going away and back."""

from __future__ import annotations

import time

import requests
from redisproc import RedisServer  # noqa: E402

from harness import run_twistd

CONFIG = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[hub]
backend = "redis"
url = "{url}"
node = "node-a"
retry_min = 0.05
retry_max = 0.3
presence_ttl = 2
"""



def wait_status(fs, code: int, timeout: float = 15) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(fs.url() + "/status", timeout=5)
        if r.status_code == code:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"/status stayed {r.status_code} {r.text!r}; log:\n{fs.log()}")
        time.sleep(0.05)


def test_status_reports_the_hub_down_while_redis_is_away(freescore, redis_server):
    fs = freescore(CONFIG.format(url=redis_server.url))
    fs.wait_log(r"redis hub: node node-a connected to redis://127\.0\.0\.1:\d+/0")
    assert wait_status(fs, 200).text == "OK"
    redis_server.kill()
    r = wait_status(fs, 503)
    assert "hub" in r.text
    fs.wait_log(r"redis hub: lost the connection to redis://")
    redis_server.start()
    assert wait_status(fs, 200).text == "OK"
    assert fs.stop() in (0, -15)
    log = fs.log()
    assert log.count("redis hub: lost the connection") == 1, "one warning per outage"
    assert log.count("connected to redis://") == 2
    assert "Traceback" not in log


def test_status_down_until_redis_first_answers(freescore, redis_server):
    redis_server.kill()
    fs = freescore(CONFIG.format(url=redis_server.url))
    assert "hub" in wait_status(fs, 503).text
    fs.wait_log(r"redis hub: cannot connect to redis://")
    redis_server.start()
    assert wait_status(fs, 200).text == "OK"


def test_invalid_redis_url_stops_start_with_one_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.format(url="http://127.0.0.1:6379"))
    result = run_twistd(config)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"freescore: {config}: hub.url: invalid Redis URL 'http://127.0.0.1:6379': "
        "give redis://host:port/db (or rediss:// for TLS)"
    ]


def test_stops_promptly_while_redis_is_down(freescore, redis_server):
    fs = freescore(CONFIG.format(url=redis_server.url))
    fs.wait_log(r"redis hub: node node-a connected")
    redis_server.kill()
    wait_status(fs, 503)
    assert fs.stop(timeout=10) in (0, -15)
    assert "Traceback" not in fs.log()


def heartbeats(server: RedisServer) -> set[str]:
    reply = server.command("KEYS", "freescore:hb:*") or b""
    return {line for line in reply.decode().split("\r\n") if line.startswith("freescore:hb:")}


def test_two_nodes_share_one_redis_and_a_clean_stop_leaves_at_once(freescore, redis_server, tmp_path):
    config = CONFIG.format(url=redis_server.url).replace("presence_ttl = 2", "presence_ttl = 60")
    a = freescore(config, "node-a.toml")
    b = freescore(config.replace("node-a", "node-b"), "node-b.toml")
    a.wait_log(r"redis hub: node node-a connected")
    b.wait_log(r"redis hub: node node-b connected")
    assert wait_status(a, 200).text == wait_status(b, 200).text == "OK"
    deadline = time.monotonic() + 10
    while {key.split("#")[0] for key in heartbeats(redis_server)} != {"freescore:hb:node-a", "freescore:hb:node-b"}:
        assert time.monotonic() < deadline, heartbeats(redis_server)
        time.sleep(0.05)
    assert b.stop() in (0, -15)
    # long before presence_ttl (60 s): the stopped node removed its heartbeat itself
    assert {key.split("#")[0] for key in heartbeats(redis_server)} == {"freescore:hb:node-a"}
    assert wait_status(a, 200).text == "OK"

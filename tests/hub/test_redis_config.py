"""[hub] settings for the Redis backend and the Redis URL parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from freescore.config import ConfigError, load, parse
from freescore.hub.redis_url import RedisURL, parse_url

BASE = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[hub]\nbackend = "redis"\n'


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1", RedisURL("127.0.0.1", 6379, 0, None, None, False)),
        ("redis://redis.lan:6380/3", RedisURL("redis.lan", 6380, 3, None, None, False)),
        ("redis://:p%40ss@h/1", RedisURL("h", 6379, 1, "p@ss", None, False)),
        ("redis://user:pw@h:1/", RedisURL("h", 1, 0, "pw", "user", False)),
        ("rediss://[::1]:6390/2", RedisURL("::1", 6390, 2, None, None, True)),
    ],
)
def test_parse_url(url, expected):
    assert parse_url(url) == expected


def test_url_in_logs_has_no_password():
    assert "secret" not in str(parse_url("redis://:secret@h:1/2"))


@pytest.mark.parametrize("url", ["http://h", "redis://", "redis://h:notaport", "redis://h/db", "h:6379",
                                 "redis://h/0?x=1", "redis://h:99999"])
def test_bad_urls(url):
    with pytest.raises(ValueError, match="invalid Redis URL"):
        parse_url(url)


def test_config_reports_bad_url_on_one_line():
    with pytest.raises(ConfigError) as e:
        parse(BASE + 'url = "http://nowhere"\n', "/etc/fs.toml")
    assert e.value.key == "hub.url"
    assert "\n" not in str(e.value)
    assert str(e.value).startswith("/etc/fs.toml: hub.url: invalid Redis URL")


def test_memory_backend_does_not_check_the_url():
    cfg = parse(BASE.replace('"redis"', '"memory"') + 'url = "whatever"\n')
    assert cfg.hub.backend == "memory"


@pytest.mark.parametrize(("key", "value"), [("presence_ttl", 0), ("timeout", -1), ("retry_min", 0)])
def test_timers_must_be_positive(key, value):
    with pytest.raises(ConfigError, match=f"hub.{key}: must be positive"):
        parse(BASE + f"{key} = {value}\n")


def test_retry_max_not_below_retry_min():
    with pytest.raises(ConfigError, match="hub.retry_max"):
        parse(BASE + "retry_min = 5\nretry_max = 1\n")


def test_redis_settings_accepted():
    cfg = parse(BASE + 'url = "redis://10.0.0.5:6379/2"\nnode = "node-a"\npresence_ttl = 5\n')
    assert (cfg.hub.url, cfg.hub.node, cfg.hub.presence_ttl) == ("redis://10.0.0.5:6379/2", "node-a", 5.0)


TWO_NODES = Path(__file__).resolve().parents[2] / "etc" / "two-nodes"


def test_two_node_example_configs_are_valid():
    a = load(TWO_NODES / "node-a.toml")
    b = load(TWO_NODES / "node-b.toml")
    assert a.hub.backend == b.hub.backend == "redis"
    assert a.hub.url == b.hub.url
    assert a.hub.node != b.hub.node
    assert a.listeners[0].endpoint != b.listeners[0].endpoint


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed (apt-get install haproxy)")
def test_two_node_haproxy_example_is_valid():
    result = subprocess.run(["haproxy", "-c", "-f", str(TWO_NODES / "haproxy.cfg")], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr

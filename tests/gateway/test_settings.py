"""The [gateway] table: defaults, environment overrides, the push API's start-up rule."""

import re

import pytest

from freescore import config
from freescore.gateway.settings import Settings, apply_environment

BASE = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"
"""


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    for name in ("API_URI", "TARGET_ADDRESS", "WS_HOSTNAME", "LOCAL_ADDRESS", "WS_TIMEOUT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def parse(text):
    return config.parse(BASE + text).services["gateway"]


def test_defaults():
    s = parse('[gateway]\napi_uri = "localhost:3000/websocket"\n')
    assert s.api_uri == "http://localhost:3000/websocket"
    assert (s.path, s.push_path, s.timeout, s.hook_timeout) == ("/gateway", "/@connections", 30000, 10000)
    assert (s.max_frame, s.max_message, s.idle_timeout, s.max_duration) == (32768, 131072, 600, 7200)
    assert s.keepalive == 15.0


def test_api_uri_required():
    with pytest.raises(config.ConfigError, match="gateway.api_uri"):
        parse("[gateway]\n")


def test_hook_timeout_clamped_and_large_timeout_accepted():
    s = parse('[gateway]\napi_uri = "http://b/x"\nhook_timeout = 10\ntimeout = 120000\n')
    assert s.hook_timeout == 50 and s.timeout == 120000
    assert parse('[gateway]\napi_uri = "http://b/x"\nhook_timeout = 99999\n').hook_timeout == 29000


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("TARGET_ADDRESS", "localhost:9/ws")
    monkeypatch.setenv("LOCAL_ADDRESS", "gw.example:80/@connections")
    monkeypatch.setenv("WS_TIMEOUT", "2000")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    s = parse('[gateway]\napi_uri = "http://b/x"\n')
    assert (s.api_uri, s.ws_hostname, s.timeout, s.log_level) == (
        "http://localhost:9/ws", "http://gw.example:80/@connections", 2000, "debug")
    monkeypatch.setenv("WS_TIMEOUT", "soon")
    with pytest.raises(config.ConfigError, match="gateway.timeout"):
        parse('[gateway]\napi_uri = "http://b/x"\n')


def test_api_uri_wins_over_target_address():
    s = apply_environment(Settings(api_uri="x"), {"API_URI": "a", "TARGET_ADDRESS": "b"})
    assert s.api_uri == "a"


def test_open_push_api_needs_credentials():
    text = """
[[listen]]
endpoint = "tcp:0"
[gateway]
api_uri = "http://b/x"
"""
    with pytest.raises(config.ConfigError, match="gateway.push_listen"):
        parse(text)
    assert parse(text + 'push_token = "t"\n').push_token == "t"
    assert parse(text + "push_listen = [0]\n").push_listen == (0,)


def test_push_listen_must_be_a_gateway_listener():
    with pytest.raises(config.ConfigError, match=r"gateway.push_listen\[0\]"):
        parse('[gateway]\napi_uri = "http://b/x"\npush_listen = ["nope"]\n')


def test_bad_values():
    for extra, key in [('path = "gw"', "path"), ('push_path = "/gateway"', "push_path"),
                       ('log_level = "loud"', "log_level"), ('push_allow = ["x"]', "push_allow[0]"),
                       ("idle_timeout = -1", "idle_timeout"), ('push_token = ""', "push_token")]:
        with pytest.raises(config.ConfigError, match=re.escape(f"gateway.{key}")):
            parse(f'[gateway]\napi_uri = "http://b/x"\n{extra}\n')


@pytest.mark.parametrize("endpoint, loopback", [
    ("tcp:8080:interface=127.0.0.1", True),
    ("tcp:8080:interface=127.0.0.2", True),
    ("tcp6:8080:interface=\\:\\:1", True),
    ("tcp6:8080:interface=\\:\\:", False),
    ("tcp:8080:interface=localhost", True),
    ("tcp:8080", False),
    ("tcp:8080:interface=0.0.0.0", False),
    ("unix:/run/freescore.sock", True),
    ("ssl:443", False),
])
def test_loopback_listeners(endpoint, loopback):
    from freescore.config import ListenerSettings

    assert ListenerSettings(endpoint=endpoint).loopback is loopback


def test_max_backlog_default_and_bounds():
    api = '[gateway]\napi_uri = "http://b/x"\n'
    assert parse(api).max_backlog == 256 * 1024 * 1024
    assert parse(api + "max_backlog = 0\n").max_backlog == 0
    assert parse(api + "max_message = 1024\nmax_backlog = 1024\n").max_backlog == 1024
    with pytest.raises(config.ConfigError, match="gateway.max_backlog: must not be negative"):
        parse(api + "max_backlog = -1\n")
    with pytest.raises(config.ConfigError, match=r"gateway.max_backlog: must be 0 \(off\) or at least max_message"):
        parse(api + "max_message = 1024\nmax_backlog = 1023\n")

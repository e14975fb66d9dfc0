"""fedmsg settings: endpoint validation and cross-field rules (spec §4.2, §5)."""

from pathlib import Path

import pytest

from freescore.config import ConfigError, SettingError, parse
from freescore.fedmsg.settings import Settings, check_endpoint


@pytest.mark.parametrize(
    "endpoint, method, expected",
    [
        ("tcp://hub.fedoraproject.org:9940", "connect", "tcp://hub.fedoraproject.org:9940"),
        ("tcp://*:9940", "connect", "tcp://127.0.0.1:9940"),
        ("tcp://localhost:9940", "connect", "tcp://localhost:9940"),
        ("tcp://[::1]:9940", "connect", "tcp://[::1]:9940"),
        ("tcp://*:9940", "bind", "tcp://*:9940"),
        ("tcp://*:*", "bind", "tcp://*:*"),
        ("ipc:///var/run/fedmsg/monitoring.socket", "connect", "ipc:///var/run/fedmsg/monitoring.socket"),
    ],
)
def test_good_endpoints(endpoint, method, expected):
    assert check_endpoint(endpoint, method, "endpoints[0]") == expected


@pytest.mark.parametrize(
    "endpoint, method",
    [
        ("tcp://nohost", "connect"),
        ("tcp://host:0", "connect"),
        ("tcp://host:70000", "connect"),
        ("tcp://host:*", "connect"),
        ("http://host:80", "connect"),
        ("hub.fedoraproject.org:9940", "connect"),
        ("tcp://localhost:9940", "bind"),
        ("", "connect"),
    ],
)
def test_bad_endpoints(endpoint, method):
    with pytest.raises(SettingError):
        check_endpoint(endpoint, method, "endpoints[0]")


def test_validate_normalises_and_checks():
    s = Settings(endpoints=("tcp://*:9940",)).validate(Path("."))
    assert s.endpoints == ("tcp://127.0.0.1:9940",)
    for bad in (
        Settings(path="fedmsg"),
        Settings(publish_path="/fedmsg"),
        Settings(subscribe_method="both"),
        Settings(publish_token=" "),
        Settings(max_patterns=0),
        Settings(reconnect_ivl=-1),
        Settings(endpoints=("tcp://127.0.0.1:5",), publish_endpoints=("tcp://127.0.0.1:5",)),
    ):
        with pytest.raises(SettingError):
            bad.validate(Path("."))


def test_config_error_names_the_key():
    with pytest.raises(ConfigError, match=r"fedmsg\.endpoints\[1\]"):
        parse('[[listen]]\nendpoint = "tcp:0"\n[fedmsg]\nendpoints = ["tcp://a:1", "tcp://b"]\n')
    config = parse('[[listen]]\nendpoint = "tcp:0"\n[fedmsg]\npath = "/"\nstrict = true\n')
    assert config.services["fedmsg"].path == "/"
    assert config.services["fedmsg"].strict is True

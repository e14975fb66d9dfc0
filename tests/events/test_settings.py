"""The [events] table: defaults, and errors that name the key."""

import pytest

from freescore.config import ConfigError, parse

BASE = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[events]\n'


def test_defaults():
    s = parse(BASE, "/tmp/x.toml").services["events"]
    assert (s.path, s.max_queue, s.max_clients, s.max_subscriptions, s.max_packet) == (
        "/socket.io/", 50, 5000, 10, 10000)
    assert (s.ping_interval, s.ping_timeout, s.legacy, s.legacy_path, s.legacy_sender_path, s.channels_path) == (
        25000, 300000, True, "/event/", "/event-sender/", "/channels/")
    assert s.sender_token is None and s.amqp_url is None and s.amqp_exchange == "dmoj-events"


@pytest.mark.parametrize(
    "line,key",
    [
        ('path = "socket.io"', "events.path"),
        ("max_packet = 0", "events.max_packet"),
        ("max_sender_packet = 100", "events.max_sender_packet"),
        ("rate_limit = -1", "events.rate_limit"),
        ('sender_token = ""', "events.sender_token"),
        ('legacy_path = "/socket.io/"', "events.legacy_path"),
        ('amqp_url = "http://x"', "events.amqp_url"),
        ("max_queue = 1.5", "events.max_queue"),
        ("nope = 1", "events.nope"),
    ],
)
def test_bad_settings_name_the_key(line, key):
    with pytest.raises(ConfigError) as e:
        parse(BASE + line + "\n", "/tmp/x.toml")
    assert e.value.key == key


OPEN = '[[listen]]\nendpoint = "tcp:0"\n'
LOCAL = '[[listen]]\nname = "local"\nendpoint = "tcp:0:interface=127.0.0.1"\n'


@pytest.mark.parametrize(
    "text",
    [
        OPEN + "[events]\n",
        LOCAL + OPEN + "[events]\n",
        '[[listen]]\nendpoint = "tcp:0:interface=0.0.0.0"\n[events]\n',
    ],
)
def test_open_legacy_sender_on_a_public_listener_is_refused(text):
    with pytest.raises(ConfigError) as e:
        parse(text, "/tmp/x.toml")
    assert e.value.key == "events.sender_token"
    assert "legacy sender would be open" in e.value.message


@pytest.mark.parametrize(
    "text",
    [
        LOCAL + "[events]\n",
        '[[listen]]\nendpoint = "tcp6:0:interface=\\\\:\\\\:1"\n[events]\n',
        '[[listen]]\nendpoint = "unix:/tmp/x.sock"\n[events]\n',
        LOCAL + OPEN + '[events]\nlisten = ["local"]\n',
        OPEN + '[events]\nsender_token = "k"\n',
        OPEN + "[events]\nlegacy = false\n",
    ],
)
def test_legacy_sender_allowed_when_closed_or_local(text):
    parse(text, "/tmp/x.toml")

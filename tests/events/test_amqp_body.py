"""Parsing the bodies Django's AMQP poster publishes."""

import pytest

from freescore.events.amqp import parse_body


def test_django_body():
    assert parse_body(b'{"id": 1753071234571000, "channel": "sub", "message": {"a": 1}}') == (
        1753071234571000, "sub", {"a": 1})


@pytest.mark.parametrize("body", [b"", b"\xff", b"[]", b'{"id": "1", "channel": "a"}', b'{"id": 1}',
                                  b'{"id": true, "channel": "a"}', b'{"id": -1, "channel": "a"}',
                                  b'{"id": 1, "channel": ""}', b'{"id": 9007199254740993, "channel": "a"}'])
def test_bad_bodies(body):
    assert parse_body(body) is None

"""When an answer lets its keep-alive connection be reused (RFC 9112 section 9.3)."""

import pytest

from freescore.gateway.hookpool import keeps_alive

HTTP10 = (b"HTTP", 1, 0)
HTTP11 = (b"HTTP", 1, 1)


@pytest.mark.parametrize("version, connection, reused", [
    (HTTP11, [], True),
    (HTTP11, [b"keep-alive"], True),
    (HTTP11, [b"close"], False),
    (HTTP11, [b"Keep-Alive, Close"], False),
    (HTTP10, [], False),
    (HTTP10, [b"Keep-Alive"], True),
    (HTTP10, [b"upgrade", b" keep-alive "], True),
    (HTTP10, [b"keep-alive", b"close"], False),
])
def test_keeps_alive(version, connection, reused):
    assert keeps_alive(version, connection) is reused

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


def test_answer_keeps_what_the_hook_reads_and_closes_on_more_or_on_cancel():
    from twisted.internet.defer import CancelledError
    from twisted.internet.testing import StringTransport
    from twisted.python.failure import Failure
    from twisted.web.client import ResponseDone

    from freescore.gateway.hookpool import Answer, AnswerTooLong

    def answer(keep):
        a = Answer(keep)
        a.makeConnection(StringTransport())
        return a

    ignored = answer(None)
    for _ in range(100):
        ignored.dataReceived(b"x" * 65536)
    ignored.connectionLost(Failure(ResponseDone()))
    assert (ignored.done.result, ignored.parts, ignored.transport.disconnecting) == (b"", [], False)

    kept = answer(4)
    kept.dataReceived(b'{"a"')
    kept.connectionLost(Failure(ResponseDone()))
    assert kept.done.result == b'{"a"'

    over = answer(4)
    over.dataReceived(b'{"a":')
    assert over.transport.disconnecting and failure_of(over.done).check(AnswerTooLong)

    cancelled = answer(4)
    cancelled.done.cancel()
    assert cancelled.transport.disconnecting and failure_of(cancelled.done).check(CancelledError)


def failure_of(d):
    """The failure `d` fired with (a trap in an errback would only log another one, failing nothing)."""
    failures = []
    d.addErrback(failures.append)
    assert len(failures) == 1, d
    return failures[0]

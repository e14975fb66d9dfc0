"""Poll pacing on a real epoll reactor with real sockets: when it waits, and that it undoes itself."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.pollreactor import PollReactor

from freescore import config
from freescore.metrics import Metrics
from freescore.pollpacing import PacingPoller, PollPacing, pause_before_poll
from freescore.settings import RuntimeSettings

LISTEN = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'


@pytest.mark.parametrize(
    ("last_ready", "timeout", "pause"),
    [
        (0, -1, 0.0),  # idle: poll at once (and block: -1, no timer)
        (3, -1, 0.0),  # below batch_ready
        (4, -1, 0.001),
        (40, 5.0, 0.001),
        (4, 0.0004, 0.0004),  # never past the next timer
        (4, 0.0, 0.0),
    ],
)
def test_pause_before_poll(last_ready: int, timeout: float, pause: float) -> None:
    assert pause_before_poll(last_ready, 4, 0.001, timeout) == pause


def test_pause_zero_is_off() -> None:
    assert pause_before_poll(1000, 4, 0.0, -1) == 0.0


class Reader:
    """An IReadDescriptor over one end of a socket pair: reads what arrives."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.got = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        self.got += self.sock.recv(100)

    def logPrefix(self) -> str:
        return "Reader"

    def connectionLost(self, reason: object) -> None:
        pass


_open: list[socket.socket] = []


@pytest.fixture
def reactor() -> Iterator[EPollReactor]:
    r = EPollReactor()  # a reactor of its own, never run: turns are driven by `iterate`
    yield r
    r.removeAll()
    r._poller.close()
    while _open:
        _open.pop().close()


def pairs(reactor: EPollReactor, count: int) -> list[tuple[socket.socket, Reader]]:
    made = []
    for _ in range(count):
        a, b = socket.socketpair()
        _open.extend((a, b))
        reader = Reader(b)
        reactor.addReader(reader)
        made.append((a, reader))
    return made


def test_a_busy_poll_makes_the_next_turn_wait(reactor: EPollReactor) -> None:
    pacing = PollPacing(reactor, Metrics(), RuntimeSettings(batch_pause=0.001, batch_ready=3))
    pacing.startService()
    socks = pairs(reactor, 3)
    for a, _ in socks:
        a.send(b"x")
    reactor.iterate(5)  # the first poll: nothing before it was busy
    assert pacing.paced.pending == 0
    assert [r.got for _, r in socks] == [b"x"] * 3
    socks[0][0].send(b"y")
    reactor.iterate(5)  # the last poll found 3: this turn waits first, then reads
    assert pacing.paced.pending == 1
    assert socks[0][1].got == b"xy"
    socks[1][0].send(b"z")
    reactor.iterate(5)  # the last poll found 1: no wait
    assert pacing.paced.pending == 1
    assert socks[1][1].got == b"xz"
    pacing.stopService()


def test_stop_restores_the_reactor_and_two_services_share_one_pacing(reactor: EPollReactor) -> None:
    settings = RuntimeSettings(batch_pause=0.001, batch_ready=1)
    first = PollPacing(reactor, Metrics(), settings)
    second = PollPacing(reactor, Metrics(), settings)
    first.startService()
    second.startService()
    epoll = reactor._poller.epoll
    assert isinstance(reactor._poller, PacingPoller)
    first.stopService()
    assert isinstance(reactor._poller, PacingPoller)  # the second still runs: still paced
    second.stopService()
    assert reactor._poller is epoll
    (a, r), = pairs(reactor, 1)
    a.send(b"x")
    reactor.iterate(5)
    assert r.got == b"x"


def test_another_reactor_is_left_alone() -> None:
    r = PollReactor()
    pacing = PollPacing(r, Metrics(), RuntimeSettings())
    pacing.startService()
    assert not isinstance(r._poller, PacingPoller)
    pacing.stopService()
    r.removeAll()


def test_runtime_defaults_and_errors() -> None:
    rt = config.parse(LISTEN).runtime
    assert (rt.batch_pause, rt.batch_ready) == (0.0005, 4)
    assert config.parse(LISTEN + "[runtime]\nbatch_pause = 0\n").runtime.batch_pause == 0.0
    for text, key, message in [
        ("batch_pause = -1", "runtime.batch_pause", "0 (off) or up to 0.01 s"),
        ("batch_pause = 0.5", "runtime.batch_pause", "0 (off) or up to 0.01 s"),
        ("batch_ready = 0", "runtime.batch_ready", "at least 1"),
        ('batch_ready = "4"', "runtime.batch_ready", "integer"),
    ]:
        with pytest.raises(config.ConfigError) as e:
            config.parse(LISTEN + "[runtime]\n" + text + "\n")
        assert e.value.key == key
        assert message in e.value.message

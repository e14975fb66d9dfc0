"""Poll pacing on a real epoll reactor with real sockets: when it waits, and that it undoes itself."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.pollreactor import PollReactor

from freescore import config
from freescore.metrics import Metrics
from freescore.pollpacing import WINDOW, PacingPoller, PollPacing, pacing_due, pause_before_poll
from freescore.settings import RuntimeSettings

LISTEN = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'


@pytest.mark.parametrize(
    ("found", "elapsed", "due"),
    [
        (800, 0.05, True),  # 16 000 a second: 8 per 0.5 ms
        (799, 0.05, False),
        (100, 0.0, True),  # a window within one clock tick
        (0, 0.0, False),  # only timers woke it
        (10, 60.0, False),  # light load
    ],
)
def test_pacing_due(found: int, elapsed: float, due: bool) -> None:
    assert pacing_due(found, elapsed, 8, 0.0005) is due


@pytest.mark.parametrize(
    ("pacing", "last_ready", "timeout", "pause"),
    [
        (False, 50, -1, 0.0),  # the rate is low: never wait
        (True, 0, -1, 0.0),  # the last poll found nothing (a timer): poll at once
        (True, 1, -1, 0.001),
        (True, 40, 5.0, 0.001),
        (True, 4, 0.0004, 0.0004),  # never past the next timer
        (True, 4, 0.0, 0.0),
    ],
)
def test_pause_before_poll(pacing: bool, last_ready: int, timeout: float, pause: float) -> None:
    assert pause_before_poll(pacing, last_ready, 0.001, timeout) == pause


def test_pause_zero_is_off() -> None:
    assert not pacing_due(10**6, 0.001, 8, 0.0)


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


class Clock:
    """Seconds that move only when the test says: the rate a window measures is the test's choice."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_high_rate_paces_and_a_low_one_stops_it(reactor: EPollReactor) -> None:
    clock = Clock()
    pacing = PollPacing(reactor, Metrics(), RuntimeSettings(batch_pause=0.001, batch_ready=8), clock=clock)
    pacing.startService()
    poller = reactor._poller
    (a, r), = pairs(reactor, 1)
    for _ in range(WINDOW):  # a window of polls that each find the socket, within one tick: a high rate
        a.send(b"x")
        reactor.iterate(5)
    assert poller.pacing and pacing.paced.pending == 0  # decided at the window's end; nothing waited yet
    a.send(b"y")
    reactor.iterate(5)  # the last poll found a socket: this turn waits, then reads
    assert pacing.paced.pending == 1
    assert r.got == b"x" * WINDOW + b"y"
    clock.now += 3600.0  # the rest of this window spreads over an hour: a low rate
    for _ in range(WINDOW - 1):
        a.send(b"z")
        reactor.iterate(5)
    assert not poller.pacing
    waited = pacing.paced.pending
    a.send(b"z")
    reactor.iterate(5)
    assert pacing.paced.pending == waited  # no longer paced
    pacing.stopService()


def test_stop_restores_the_reactor_and_two_services_share_one_pacing(reactor: EPollReactor) -> None:
    settings = RuntimeSettings(batch_pause=0.001, batch_ready=8)
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
    assert (rt.batch_pause, rt.batch_ready) == (0.0005, 8)
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

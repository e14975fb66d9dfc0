"""The event daemon in a real `twistd freescore`: Engine.IO conformance, python-socketio, bad input."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from contextlib import ExitStack
from urllib.parse import urlencode

import pytest
import requests
import socketio
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from harness import FreescoreProcess, metric

TOKEN = "s3cret-token"
CONFIG = f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[events]
sender_token = "{TOKEN}"
max_clients = 100
rate_limit = 0.0
"""
EIO = {"EIO": "4", "transport": "polling"}
GENEROUS = 30.0
"""Bounds a wait for bytes; it measures nothing."""


@pytest.fixture(scope="module")
def fs(tmp_path_factory):
    proc = FreescoreProcess(CONFIG, tmp_path_factory.mktemp("events")).start()
    yield proc
    proc.stop()
    assert "Unhandled" not in proc.log() and "Traceback" not in proc.log()


class Poller:
    """A hand-driven Engine.IO polling session, to see the exact bytes."""

    def __init__(self, base: str) -> None:
        self.url = base + "/socket.io/"
        r = requests.get(self.url, params=EIO, timeout=5)
        assert r.status_code == 200, r.text
        self.open = json.loads(r.text[1:])
        self.sid = self.open["sid"]

    def params(self, **extra: str) -> dict[str, str]:
        return {**EIO, "sid": self.sid, **extra}

    def get(self, timeout: float = 10) -> requests.Response:
        return requests.get(self.url, params=self.params(), timeout=timeout)

    def post(self, *packets: str) -> requests.Response:
        return requests.post(self.url, params=self.params(), data="\x1e".join(packets).encode(), timeout=5)

    def packets(self, timeout: float = 10) -> list[str]:
        r = self.get(timeout)
        assert r.status_code == 200, r.text
        return r.text.split("\x1e")

    def connect(self, auth: dict | None = None) -> str:
        assert self.post("40" + (json.dumps(auth) if auth else "")).text == "ok"
        (reply,) = self.packets()
        assert reply.startswith("40{")
        return json.loads(reply[2:])["sid"]

    def emit(self, name: str, *args) -> None:
        assert self.post("42" + json.dumps([name, *args])).text == "ok"

    def events(self) -> list:
        return [json.loads(p[2:]) for p in self.packets() if p.startswith("42")]


def sender(fs, token: str = TOKEN) -> socketio.Client:
    """The Django poster's client, with its options."""
    client = socketio.Client(reconnection=False, request_timeout=0.5)
    client.connect(fs.url(), auth={"role": "sender", "token": token}, namespaces=["/"], wait_timeout=0.5)
    return client


def assert_closed(p: Poller) -> None:
    """A closed session hands a last GET its close packet `1`, then its sid is unknown."""
    r = p.get()
    if r.status_code == 200:
        assert r.text.split("\x1e")[-1] == "1"
        r = p.get()
    assert error_of(r) == (400, 1)


def error_of(response: requests.Response) -> tuple[int, int]:
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()["code"]


# -- Engine.IO -------------------------------------------------------------------------
def test_handshake_packet_and_cors(fs):
    r = requests.get(fs.url() + "/socket.io/", params=EIO, timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=UTF-8"
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    assert r.text.startswith("0{")
    body = json.loads(r.text[1:])
    assert body == {"sid": body["sid"], "upgrades": ["websocket"], "pingInterval": 25000,
                    "pingTimeout": 300000, "maxPayload": 10000}
    assert len(body["sid"]) == 20


def test_preflight(fs):
    r = requests.options(fs.url() + "/socket.io/", params=EIO, timeout=5,
                         headers={"Origin": "https://x.example", "Access-Control-Request-Method": "POST",
                                  "Access-Control-Request-Headers": "content-type,x-thing"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "GET,POST"
    assert r.headers["access-control-allow-headers"] == "content-type,x-thing"


@pytest.mark.parametrize(
    "params,method,expected",
    [
        ({"EIO": "3", "transport": "polling"}, "GET", (400, 5)),
        ({"transport": "polling"}, "GET", (400, 5)),
        ({"EIO": "4", "transport": "foo"}, "GET", (400, 0)),
        ({"EIO": "4", "transport": "polling", "sid": "nosuchsidnosuchsid00"}, "GET", (400, 1)),
        ({"EIO": "4", "transport": "polling", "sid": "nosuchsidnosuchsid00"}, "POST", (400, 1)),
        ({"EIO": "4", "transport": "polling"}, "POST", (400, 2)),
        ({"EIO": "4", "transport": "polling"}, "PUT", (400, 2)),
    ],
)
def test_request_errors(fs, params, method, expected):
    r = requests.request(method, fs.url() + "/socket.io/", params=params, timeout=5)
    assert error_of(r) == expected
    assert r.headers["access-control-allow-origin"] == "*"


def test_connect_over_polling_and_client_events(fs):
    p = Poller(fs.url())
    assert len(p.connect({"role": "client"})) == 20
    p.emit("last-msg")
    (name, body), = p.events()
    assert name == "last-response" and body["status"] == "success" and body["id"] > 1.7e12


def test_second_concurrent_get_is_400_and_closes_the_session(fs):
    p = Poller(fs.url())
    p.connect()
    answers: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: answers.append(p.get())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # Whichever GET came second is refused; the held one then gets the close packet.
    refused = [r for r in answers if r.status_code == 400]
    held = [r for r in answers if r.status_code == 200]
    assert len(refused) == 1 and error_of(refused[0]) == (400, 3)
    assert len(held) == 1 and held[0].text.split("\x1e")[-1] == "1"
    assert error_of(p.get()) == (400, 1)


def read_by_server(fs) -> None:
    """Return once the server has read every request sent before: it answered one sent after them.

    One reactor reads its sockets in the order their bytes arrived, so a request
    on a new connection is answered only after those that were already waiting.
    """
    assert requests.get(fs.url() + "/status", timeout=5).status_code == 200


def held_get(fs, p: Poller) -> http.client.HTTPConnection:
    """A polling GET the server has read and holds (nothing to send yet)."""
    held = http.client.HTTPConnection("127.0.0.1", fs.port(0), timeout=10)
    held.request("GET", "/socket.io/?" + urlencode(p.params()))
    read_by_server(fs)
    return held


def test_websocket_upgrade(fs):
    p = Poller(fs.url())
    p.connect()
    # A held GET: the probe is what releases it.
    held = held_get(fs, p)
    url = fs.url(0, "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={p.sid}"
    with ws_connect(url) as ws:
        ws.send("2probe")
        assert ws.recv(5) == "3probe"
        released = held.getresponse()
        assert released.status == 200 and released.read() == b"6"
        held.close()
        # A GET held after the probe, before the client's upgrade packet, is released (noop) by the upgrade.
        late = held_get(fs, p)
        ws.send("5")
        released = late.getresponse()
        assert (released.status, released.read()) == (200, b"6")
        late.close()
        assert error_of(p.get()) == (400, 3)
        ws.send('42["last-msg"]')
        name, body = json.loads(ws.recv(5)[2:])
        assert name == "last-response"
        ws.send('421["start-msg",{"start":0}]')
        assert json.loads(ws.recv(5)[2:]) == ["status", {"status": "success"}]


def upgrading(fs) -> tuple[Poller, str]:
    """A joined polling session, and the URL of a WebSocket that upgrades it."""
    p = Poller(fs.url())
    p.connect()
    return p, fs.url(0, "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={p.sid}"


def probe(ws) -> None:
    ws.send("2probe")
    assert ws.recv(5) == "3probe"


def next_probe(url: str):
    """A probing WebSocket once the last one is gone: the server sees a close a moment after the client."""
    deadline = time.monotonic() + GENEROUS
    while True:
        try:
            return ws_connect(url)
        except InvalidStatus:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_one_probing_websocket_per_session_and_none_outlives_it(fs):
    """A second WebSocket for a sid that one is probing is refused (400, as Node). It was accepted,
    and the session forgot the first: left open, unpinged and counted, after the session ended."""
    _, url = upgrading(fs)
    with ws_connect(url) as first:
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url)
        assert refused.value.response.status_code == 400
        probe(first)
        first.send("5")
        first.send("1")  # the client ends the session: its WebSocket goes with it
        with pytest.raises(ConnectionClosed):
            first.recv(GENEROUS)
    # A probe that leaves before `5` frees the session for the next one.
    _, url = upgrading(fs)
    with ws_connect(url) as gone:
        probe(gone)
    with next_probe(url) as retry:
        probe(retry)


def test_a_probe_that_goes_wrong_or_stalls_is_dropped_and_the_session_polls_on(fs):
    """As Node: a bad packet on the probing WebSocket closes that WebSocket only (it closed the
    session), and one that sends no `5` within the upgrade timeout (10 s) is dropped, so it cannot
    hold the session's one upgrade for ever."""
    p, url = upgrading(fs)
    with ws_connect(url) as bad:
        probe(bad)
        bad.send('42["last-msg"]')
        with pytest.raises(ConnectionClosed):
            bad.recv(GENEROUS)
        assert bad.close_code == 1002
    p.emit("last-msg")
    assert p.events()[0][0] == "last-response"
    with next_probe(url) as stalled:
        with pytest.raises(ConnectionClosed):
            stalled.recv(GENEROUS)
        assert stalled.close_code == 1008
    p.emit("last-msg")
    assert p.events()[0][0] == "last-response"


def test_posts_queued_during_upgrades_arrive_on_every_websocket(fs):
    """Posts that reach sessions mid-upgrade wait in their outboxes, then go out over the WebSocket."""
    client = sender(fs)
    with ExitStack() as stack:
        stack.callback(client.disconnect)
        sockets = []
        for _ in range(3):
            p = Poller(fs.url())
            p.connect({"role": "client"})
            p.emit("set-filter", {"filter": ["U"]})
            assert p.events() == [["status", {"status": "success"}]]
            # No GET held, so nothing can take the session's packets until the upgrade ends.
            url = fs.url(0, "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={p.sid}"
            ws = stack.enter_context(ws_connect(url))
            ws.send("2probe")
            assert ws.recv(5) == "3probe"
            sockets.append(ws)
        ids = [client.call("post", {"channel": "U", "message": i}, timeout=5)["id"] for i in range(2)]
        for ws in sockets:
            ws.send("5")
        for ws in sockets:
            got = [json.loads(ws.recv(5)[2:]) for _ in ids]
            assert got == [["message", {"id": n, "channel": "U", "message": i}] for i, n in enumerate(ids)]


def test_direct_websocket_has_no_upgrades(fs):
    with ws_connect(fs.url(0, "ws") + "/socket.io/?EIO=4&transport=websocket") as ws:
        body = json.loads(ws.recv(5)[1:])
        assert body["upgrades"] == []
        ws.send("40")
        assert ws.recv(5).startswith('40{"sid":')


def test_heartbeat_ping_then_close_on_missing_pong(freescore):
    fs = freescore(CONFIG.replace("rate_limit = 0.0", "rate_limit = 0.0\nping_interval = 200\nping_timeout = 300"))
    p = Poller(fs.url())
    assert p.open["pingInterval"] == 200 and p.open["pingTimeout"] == 300
    p.connect()
    assert p.packets() == ["2"]
    assert p.post("3").text == "ok"
    assert p.packets() == ["2"]
    # No pong now: the session ends, a held GET gets the close packet or the sid is gone.
    r = p.get()
    assert (r.status_code, r.text) == (200, "1") or error_of(r) == (400, 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and p.get().status_code == 200:
        pass
    assert error_of(p.get()) == (400, 1)


# -- Socket.IO with the Django poster's client ------------------------------------------
def test_python_socketio_sender_post_and_last_msg(fs):
    client = sender(fs)
    try:
        answer = client.call("post", {"channel": "submissions", "message": {"type": "update-submission", "id": 42}},
                             timeout=5)
        assert answer["status"] == "success" and answer["id"] > 1.7e12
        assert client.call("last-msg", timeout=5) == answer
        big = client.call("post", {"channel": "big", "message": "x" * 50_000}, timeout=5)
        assert big["status"] == "success" and big["id"] == answer["id"] + 1
        bad = client.call("post", {"channel": None, "message": 1}, timeout=5)
        assert bad == {"status": "error", "code": "invalid-channel", "message": "Invalid channel"}
        got: list = []
        done = threading.Event()
        client.on("post-response", lambda data: (got.append(data), done.set()))
        client.emit("post", {"channel": "c", "message": 1})
        assert done.wait(5) and got[0]["status"] == "success"
    finally:
        client.disconnect()


def test_python_socketio_sender_over_polling_only(fs):
    client = socketio.Client(reconnection=False, request_timeout=0.5)
    client.connect(fs.url(), auth={"role": "sender", "token": TOKEN}, namespaces=["/"], wait_timeout=0.5,
                   transports=["polling"])
    try:
        assert client.transport() == "polling"
        first = client.call("post", {"channel": "p", "message": [1, 2]}, timeout=5)["id"]
        second = client.call("post", {"channel": "p", "message": "x" * 20_000}, timeout=5)["id"]
        assert second == first + 1
        assert client.call("last-msg", timeout=5) == {"status": "success", "id": second}
    finally:
        client.disconnect()


def test_python_socketio_wrong_token_fails(fs):
    with pytest.raises(socketio.exceptions.ConnectionError):
        sender(fs, token="wrong")


def test_wrong_token_wire_form(fs):
    p = Poller(fs.url())
    p.post('40{"role":"sender","token":"nope"}')
    assert p.packets() == ['44{"message":"Authentication failed"}']


def test_invalid_namespace(fs):
    p = Poller(fs.url())
    p.post("40/admin,")
    assert p.packets() == ['44/admin,{"message":"Invalid namespace"}']


def test_live_delivery_and_catch_up_over_polling(fs):
    client = sender(fs)
    try:
        a = client.call("post", {"channel": "X", "message": "a"}, timeout=5)["id"]
        client.call("post", {"channel": "Y", "message": "other"}, timeout=5)
        client.call("post", {"channel": "X", "message": "c"}, timeout=5)
        p = Poller(fs.url())
        p.connect({"role": "client"})
        p.emit("start-msg", {"start": a})
        assert p.events() == [["status", {"status": "success"}]]
        p.emit("set-filter", {"filter": ["X"]})
        events = p.events()
        assert events[0] == ["status", {"status": "success"}]
        assert [e[1]["message"] for e in events[1:]] == ["c"]
        d = client.call("post", {"channel": "X", "message": "d"}, timeout=5)["id"]
        assert p.events() == [["message", {"id": d, "channel": "X", "message": "d"}]]
    finally:
        client.disconnect()


# -- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "packet",
    [
        '42["start-msg"]', '42["set-filter"]', '42["post"]', '42["set-filter",5]', '42["set-filter",{"filter":7}]',
        '42["start-msg","x"]', '42["post",null]', '42["start-msg",{"start":"abc"}]', '42["nope",1]', "43[1]",
        '42["last-msg",{"a":[1,2]}]',
    ],
)
def test_missing_or_odd_payloads_answer_and_server_stays_up(fs, packet):
    p = Poller(fs.url())
    p.connect()
    p.post(packet)
    p.emit("last-msg")
    events = p.events()
    assert events[-1][0] == "last-response"
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


@pytest.mark.parametrize("body", ["x", "9", "", "4", "42[", '451-["a",{"_placeholder":true,"num":0}]', "bAAAA",
                                  "40\x1e?", "0"])
def test_garbage_packets_close_the_session(fs, body):
    p = Poller(fs.url())
    p.connect()
    r = p.post(body)
    assert error_of(r) == (400, 3)
    assert_closed(p)
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


def test_oversized_polling_post_is_413_and_ends_session(fs):
    p = Poller(fs.url())
    p.connect()
    r = p.post('42["x","' + "y" * 10_000 + '"]')
    assert r.status_code == 413
    assert_closed(p)


def test_oversized_websocket_message_closes_1009(fs):
    with ws_connect(fs.url(0, "ws") + "/socket.io/?EIO=4&transport=websocket", max_size=None) as ws:
        ws.recv(5)
        ws.send("40")
        ws.recv(5)
        ws.send('42["x","' + "y" * 20_000 + '"]')
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(5)
        assert ws.close_code == 1009


def test_binary_websocket_frame_closes(fs):
    with ws_connect(fs.url(0, "ws") + "/socket.io/?EIO=4&transport=websocket") as ws:
        ws.recv(5)
        ws.send(b"\x04hello")
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(5)
        assert ws.close_code == 1003


def test_unknown_sid_websocket_is_refused(fs):
    with pytest.raises(InvalidStatus) as e:
        ws_connect(fs.url(0, "ws") + "/socket.io/?EIO=4&transport=websocket&sid=nosuchsidnosuchsid00", open_timeout=5)
    assert e.value.response.status_code == 400


def test_client_post_unauthorized(fs):
    p = Poller(fs.url())
    p.connect()
    p.emit("post", {"channel": "X", "message": 1})
    assert p.events() == [["error", {"status": "error", "code": "unauthorized", "message": "Unauthorized operation"}]]


def test_set_filter_errors_keep_old_subscription(fs):
    client = sender(fs)
    p = Poller(fs.url())
    try:
        p.connect()
        p.emit("set-filter", {"filter": ["K"]})
        assert p.events() == [["status", {"status": "success"}]]
        for bad, code in (([], "invalid-filter"), ([str(i) for i in range(11)], "too-many-subscriptions"),
                          ([""], "invalid-channel")):
            p.emit("set-filter", {"filter": bad})
            assert p.events()[0][1]["code"] == code
        msg_id = client.call("post", {"channel": "K", "message": "still"}, timeout=5)["id"]
        assert p.events() == [["message", {"id": msg_id, "channel": "K", "message": "still"}]]
    finally:
        client.disconnect()


def test_capacity(freescore):
    fs = freescore(CONFIG.replace("max_clients = 100", "max_clients = 1"))
    first = Poller(fs.url())
    first.connect()
    second = Poller(fs.url())
    assert second.post("40").text == "ok"
    packets = second.packets()
    assert packets[0].startswith('40{"sid":')
    assert packets[1:3] == [
        '42["error",{"status":"error","code":"server-capacity","message":"Server at capacity"}]', "41"]
    client = sender(fs)  # senders are exempt
    client.disconnect()


def test_max_connections_is_one_cap_over_polling_and_websocket_sessions(freescore):
    """Polling sessions were counted against polling handshakes only, so WebSockets could open
    `max_connections` sessions more. An upgrade is no new session: it is let in at the cap."""
    fs = freescore(CONFIG + "max_connections = 2\n")
    polling = Poller(fs.url())
    polling.connect()
    ws_url = fs.url(0, "ws") + "/socket.io/?EIO=4&transport=websocket"
    with ws_connect(ws_url) as direct:
        assert direct.recv(5).startswith("0{")
        r = requests.get(polling.url, params=EIO, timeout=5)
        assert error_of(r) == (503, 3)
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(ws_url)
        assert refused.value.response.status_code == 503
        with ws_connect(ws_url + f"&sid={polling.sid}") as upgrade:
            upgrade.send("2probe")
            assert upgrade.recv(5) == "3probe"
            upgrade.send("5")
            upgrade.send('42["last-msg"]')
            assert json.loads(upgrade.recv(5)[2:])[0] == "last-response"


def test_rate_limit_error_then_close_on_flood(freescore):
    fs = freescore(CONFIG.replace("rate_limit = 0.0", "rate_limit = 2.0"))
    with ws_connect(fs.url(0, "ws") + "/socket.io/?EIO=4&transport=websocket") as ws:
        ws.recv(5)
        ws.send("40")
        ws.recv(5)
        for _ in range(40):
            ws.send('42["last-msg"]')
        names = []
        with pytest.raises(ConnectionClosed):
            while True:
                packet = ws.recv(5)
                if packet.startswith("42"):
                    name, body = json.loads(packet[2:])
                    names.append(body.get("code", name))
    assert names[:5] == ["last-response"] * 5
    assert names[5] == "rate-limited"
    assert names.count("rate-limited") == 1
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


@pytest.mark.parametrize("attempt", [["40/x,"], ["40", "41"]])
def test_a_flood_of_connects_is_cut_short(freescore, attempt):
    """Every CONNECT is answered (refused, or joined): one 10 kB POST of 1666 of them queued 1666
    answers for a GET that may never come (about 150 kB held per POST; the refused ones for up to
    `connect_timeout`, `40`/`41` pairs for ever). At the client rate they are answered until the
    budget is spent, then the session closes."""
    fs = freescore(CONFIG.replace("rate_limit = 0.0", "rate_limit = 2.0"))
    p = Poller(fs.url())
    assert p.post(*attempt * (10000 // len("\x1e".join(attempt) + "\x1e"))).text == "ok"
    packets = p.packets()
    assert packets[-1] == "1"
    answers = [x for x in packets if x.startswith("4")]
    assert 0 < len(answers) <= 5 and len(packets) == len(answers) + 1
    assert_closed(p)


def test_session_without_namespace_join_is_closed(freescore):
    fs = freescore(CONFIG.replace("rate_limit = 0.0", "rate_limit = 0.0\nconnect_timeout = 300"))
    p = Poller(fs.url())
    assert_closed(p)


# -- the fan-out's direct writes -----------------------------------------------------------
def _ws_frame(text: str) -> bytes:
    """A masked client text frame (mask of zeros: the payload goes as it is)."""
    data = text.encode()
    assert len(data) < 126
    return bytes((0x81, 0x80 | len(data))) + b"\0\0\0\0" + data


def _ws_texts(buf: bytes) -> tuple[list[str], bytes]:
    """The server's whole text frames in `buf`, and what is left of a frame not complete yet."""
    texts = []
    while len(buf) >= 2:
        n, at = buf[1] & 0x7F, 2
        if n == 126:
            n, at = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            n, at = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < at + n:
            break
        texts.append(buf[at:at + n].decode())
        buf = buf[at + n:]
    return texts, buf


def _slow_socket(fs, path: str, *frames: str) -> tuple[socket.socket, bytes]:
    """A raw WebSocket with a small receive window (set before connecting), its first frames sent;
    with what followed the 101 in the same read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(GENEROUS)
    sock.connect(("127.0.0.1", fs.port()))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n".encode()
                 + b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101")
    sock.sendall(b"".join(_ws_frame(f) for f in frames))
    return sock, buf


SIO_WS = "/socket.io/?EIO=4&transport=websocket"


def test_a_subscriber_that_stops_reading_gets_every_post_once_and_in_order(freescore):
    """Posts to a WebSocket whose kernel buffers are full: the fan-out's direct send takes part of a
    frame or nothing, the rest waits in the process, and nothing is lost, doubled or reordered
    (with `max_unsent` off: the 12 MB waiting for it are over the default)."""
    fs = freescore(CONFIG + "max_unsent = 0\n")
    client = sender(fs)
    sock, buf = _slow_socket(fs, SIO_WS, "40", '42["set-filter",{"filter":["full"]}]')
    try:
        texts: list[str] = []
        while not any(t.startswith('42["status"') for t in texts):
            got, buf = _ws_texts(buf + sock.recv(65536))
            texts += got
        # Not reading now: after a few posts every send finds the socket's buffers full.
        body = "y" * 400_000
        ids = [client.call("post", {"channel": "full", "message": [i, body]}, timeout=GENEROUS)["id"]
               for i in range(30)]
        messages: list = []
        while len(messages) < len(ids):
            got, buf = _ws_texts(buf + sock.recv(1 << 20))
            messages += [json.loads(t[2:]) for t in got if t.startswith("42")]
        assert messages == [["message", {"id": n, "channel": "full", "message": [i, body]}]
                            for i, n in enumerate(ids)]
    finally:
        client.disconnect()
        sock.close()


class SioReader:
    """A Socket.IO subscriber over a WebSocket that reads everything, answering pings."""

    def __init__(self, ws, channel: str) -> None:
        self.ws = ws
        assert ws.recv(GENEROUS).startswith("0{")
        ws.send("40")
        assert ws.recv(GENEROUS).startswith("40{")
        ws.send("42" + json.dumps(["set-filter", {"filter": [channel]}]))
        assert self.next() == ["status", {"status": "success"}]

    def next(self) -> list:
        while True:
            text = self.ws.recv(GENEROUS)
            if text == "2":
                self.ws.send("3")
            elif text.startswith("42"):
                return json.loads(text[2:])


@pytest.mark.parametrize("path, frames", [
    (SIO_WS, ("40", '42["set-filter",{"filter":["busy"]}]')),
    ("/event/", ('{"command":"set-filter","filter":["busy"]}',)),
], ids=["socketio", "legacy"])
def test_a_websocket_that_stops_reading_is_closed_1013_and_another_gets_every_post(freescore, path, frames):
    """`max_unsent`: what waits for a subscriber that does not read is bounded; the others go on."""
    fs = freescore(CONFIG + "max_unsent = 65536\n")
    client = sender(fs)
    with ws_connect(fs.url(0, "ws") + SIO_WS, open_timeout=GENEROUS) as ws:
        reader = SioReader(ws, "busy")
        stalled, _ = _slow_socket(fs, path, *frames)
        try:
            body = "b" * 20_000  # each post is that big: the stalled one fills fast
            sent = 0
            while "closing (1013)" not in fs.log():
                assert sent < 2000, "the stalled subscriber was never closed"
                answer = client.call("post", {"channel": "busy", "message": [sent, body]}, timeout=GENEROUS)
                assert reader.next() == ["message", {"id": answer["id"], "channel": "busy", "message": [sent, body]}]
                sent += 1
            port = stalled.getsockname()[1]
            fs.wait_log(rf"events: tcp4:127\.0\.0\.1:{port} has \d+ bytes unsent \(over max_unsent 65536\), "
                        r"closing \(1013\)")
            last = client.call("post", {"channel": "busy", "message": "after"}, timeout=GENEROUS)["id"]
            assert reader.next() == ["message", {"id": last, "channel": "busy", "message": "after"}]
            assert protocol_errors(fs) >= 1
        finally:
            client.disconnect()
            stalled.close()
    assert "Traceback" not in fs.log()


def test_a_polling_session_that_stops_polling_is_closed_past_max_unsent_and_a_new_one_works(freescore):
    """Its outbox is bounded: dropped with the session, whose sid is then unknown (clients reconnect)."""
    fs = freescore(CONFIG + "max_unsent = 65536\n")
    client = sender(fs)
    try:
        stalled = Poller(fs.url())
        stalled.connect({"role": "client"})
        stalled.emit("set-filter", {"filter": ["slow"]})
        assert stalled.events() == [["status", {"status": "success"}]]
        sent = 0  # no GET from now on
        while f"session {stalled.sid} " not in fs.log():
            assert sent < 2000, "the stalled session was never closed"
            sent += 1
            client.call("post", {"channel": "slow", "message": "z" * 1000}, timeout=GENEROUS)
        (line,) = [ln for ln in fs.log().splitlines() if f"session {stalled.sid} " in ln]
        m = re.search(rf"session {re.escape(stalled.sid)} of tcp4:127\.0\.0\.1:\d+ has (\d+) bytes unsent "
                      r"\(over max_unsent 65536\), closing", line)
        assert m and 65536 < int(m.group(1)) < 65536 + 1100, line
        assert error_of(stalled.get()) == (400, 1)
        assert protocol_errors(fs) >= 1
        fresh = Poller(fs.url())
        fresh.connect({"role": "client"})
        fresh.emit("set-filter", {"filter": ["slow"]})  # the last 50 posts to catch up: 50 kB, under the bound
        events = fresh.events()
        assert events[0] == ["status", {"status": "success"}] and len(events) == 51
        n = client.call("post", {"channel": "slow", "message": "again"}, timeout=GENEROUS)["id"]
        assert fresh.events() == [["message", {"id": n, "channel": "slow", "message": "again"}]]
    finally:
        client.disconnect()
    assert "Traceback" not in fs.log()


def protocol_errors(fs) -> float:
    return metric(fs, 'freescore_protocol_errors_total{service="events"}')

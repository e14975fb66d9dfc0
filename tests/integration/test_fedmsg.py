"""fedmsg hub end to end: real pyzmq PUB -> twistd freescore -> `websockets` browsers.

Readiness without sleeps: each client subscribes last to its own probe topic;
the test publishes that probe until the client sees it. Then the ZeroMQ
connection is up (slow joiner) and every earlier subscribe was processed
(frames of one connection are handled in order). An end marker on the probe
topic, sent after the real messages, tells the client it has everything.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl

import pytest
import requests
import zmq
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from harness import run_twistd

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"
BODHI = "org.fedoraproject.prod.bodhi.update.comment"
OVERRIDE = "org.fedoraproject.prod.bodhi.buildroot_override.tag"
KOJI = "org.fedoraproject.prod.koji.build.state.change"
BODHIFOO = "org.fedoraproject.prod.bodhifoo.x"
TIMEOUT = 20

# A signed-looking fedmsg envelope, formatted with spaces and \n in base64 text:
# the service must pass this text through byte for byte.
SIGNED_BODY = (
    '{"username": "apache", "i": 1, "timestamp": 1700000000, '
    '"msg_id": "2023-5f0c6d1e-7c1a-4c39-9f6a-1d2e3f4a5b6c", '
    f'"topic": "{BODHI}", "msg": {{"comment": {{"text": "LGTM \\u2713"}}}}, '
    '"crypto": "x509", "signature": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\\nYWJjZGVm\\n", '
    '"certificate": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\\nTUlJQg==\\n"}'
)


def envelope(topic: str, i: int) -> bytes:
    return json.dumps({"topic": topic, "msg": {"n": i}, "i": i, "timestamp": 1700000000 + i,
                       "msg_id": f"2023-{i:08d}", "username": "apache"}).encode()


def config(port: int, extra: str = "") -> str:
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[fedmsg]
endpoints = ["tcp://127.0.0.1:{port}"]
publish_token = "{TOKEN}"
{extra}
"""


class Pub:
    def __init__(self, sock, port):
        self.sock = sock
        self.port = port

    def send_multipart(self, parts):
        self.sock.send_multipart(parts)


@pytest.fixture
def pub():
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield Pub(sock, port)
    sock.close(0)
    ctx.term()


def zmq_sender(sock):
    return lambda topic, body: sock.send_multipart([topic.encode(), body])


def http_sender(base: str, verify=True):
    def send(topic, body):
        r = requests.post(base + "/fedmsg/publish", data=json.dumps({"topic": topic, "body": json.loads(body)}),
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5, verify=verify)
        assert r.status_code == 200, r.text
        return r.json()
    return send


class Browser:
    """A `websockets` client speaking the moksha widget's protocol."""

    def __init__(self, ws, name: str) -> None:
        self.ws = ws
        self.probe = f"probe.{name}."
        self.raw: list[str] = []

    @classmethod
    async def open(cls, url: str, name: str, **kwargs) -> Browser:
        ws = await connect(url, proxy=None, **kwargs)
        return cls(ws, name)

    async def subscribe(self, *patterns: str) -> None:
        for pattern in patterns:
            await self.ws.send(json.dumps({"topic": "__topic_subscribe__", "body": pattern}))

    async def ready(self, send) -> None:
        """Subscribe to the probe topic and publish it until it arrives."""
        await self.subscribe(self.probe)
        async with asyncio.timeout(TIMEOUT):
            while True:
                send(self.probe, b'{"probe":true}')
                try:
                    async with asyncio.timeout(0.2):
                        while True:
                            msg = json.loads(await self.ws.recv())
                            if msg["topic"] == self.probe:
                                return
                except TimeoutError:
                    continue

    async def collect(self, send) -> list[dict]:
        """Publish this client's end marker and return the non-probe messages before it."""
        send(self.probe, b'{"end":true}')
        got = []
        async with asyncio.timeout(TIMEOUT):
            while True:
                raw = await self.ws.recv()
                msg = json.loads(raw)
                if msg["topic"] == self.probe and msg["body"] == {"end": True}:
                    return got
                if not msg["topic"].startswith("probe."):
                    self.raw.append(raw)
                    got.append(msg)


def topics(messages: list[dict]) -> list[str]:
    return [m["topic"] for m in messages]


def test_zmq_patterns_deliver_once_in_order(freescore, pub):
    fs = freescore(config(pub.port))
    send = zmq_sender(pub)

    async def scenario():
        url = fs.url(0, "ws") + "/fedmsg"
        bodhi = await Browser.open(url, "bodhi")
        everything = await Browser.open(url, "all")
        overlap = await Browser.open(url, "overlap")
        silent = await Browser.open(url, "silent")
        prefix = await Browser.open(url, "prefix")
        await bodhi.subscribe("org.fedoraproject.prod.bodhi.*")
        await everything.subscribe("*")
        await overlap.subscribe("*", BODHI, "org.fedoraproject.prod.bodhi.*", "*")
        await prefix.subscribe("org.fedoraproject.prod.bodhi")
        browsers = [bodhi, everything, overlap, silent, prefix]
        for b in browsers:
            await b.ready(send)
        pub.send_multipart([BODHI.encode(), SIGNED_BODY.encode()])
        send(KOJI, envelope(KOJI, 2))
        send(BODHIFOO, envelope(BODHIFOO, 3))
        pub.send_multipart([b"org.fedoraproject.prod.bodhi.bad", b"{not json"])
        pub.send_multipart([b"org.fedoraproject.prod.bodhi.bad", b"{}", b"{}"])
        pub.send_multipart([b"org.fedoraproject.prod.bodhi.bad"])
        send(OVERRIDE, envelope(OVERRIDE, 4))
        results = [await b.collect(send) for b in browsers]
        for b in browsers:
            await b.ws.close()
        return results, bodhi.raw

    results, bodhi_raw = asyncio.run(scenario())
    got_bodhi, got_all, got_overlap, got_silent, got_prefix = results
    assert topics(got_bodhi) == [BODHI, OVERRIDE]
    assert topics(got_all) == [BODHI, KOJI, BODHIFOO, OVERRIDE]
    assert topics(got_overlap) == [BODHI, KOJI, BODHIFOO, OVERRIDE]
    assert got_silent == []
    assert topics(got_prefix) == [BODHI, BODHIFOO, OVERRIDE]
    assert got_all[1]["body"] == json.loads(envelope(KOJI, 2))
    # The signed envelope arrives byte-identical inside the outer frame.
    assert bodhi_raw[0] == '{"topic":"' + BODHI + '","body":' + SIGNED_BODY + "}"
    assert got_bodhi[0]["body"]["signature"] == "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\nYWJjZGVm\n"
    metrics = requests.get(fs.url(0) + "/metrics", timeout=5).text
    assert f'freescore_fedmsg_zmq_connected{{endpoint="tcp://127.0.0.1:{pub.port}"}} 1.0' in metrics
    fs.wait_log(r"dropped a ZeroMQ message .*not JSON")
    fs.wait_log(r"dropped a ZeroMQ message .*got 3")


def test_strict_mode_and_client2server(freescore, pub):
    fs = freescore(config(pub.port, "strict = true\nclient2server = true"))
    send = zmq_sender(pub)

    async def scenario():
        url = fs.url(0, "ws") + "/fedmsg"
        exact = await Browser.open(url, "exact")
        star = await Browser.open(url, "star")
        prefix = await Browser.open(url, "prefix")
        empty = await Browser.open(url, "empty")
        talker = await Browser.open(url, "talker")
        await exact.subscribe(BODHI)
        await star.subscribe("*")
        await prefix.subscribe("org.fedoraproject.prod.bodhi.*")
        await empty.subscribe("")
        browsers = [exact, star, prefix, empty, talker]
        for b in browsers:
            await b.ready(send)
        send(BODHI, envelope(BODHI, 1))
        send(OVERRIDE, envelope(OVERRIDE, 2))
        send("org.fedoraproject.prod.bodhi.", envelope("org.fedoraproject.prod.bodhi.", 3))
        results = [await b.collect(send) for b in browsers]
        # A browser publish (client2server on) reaches the exact subscriber. The sources are
        # independent, so it goes out once the ZeroMQ messages are in.
        await talker.ws.send(json.dumps({"topic": BODHI, "body": {"from": "browser"}}))
        talker.probe = "probe.talker2."  # subscribed after the publish frame, so seen after it
        await talker.ready(send)
        results = [r + await b.collect(send) for r, b in zip(results, browsers, strict=True)]
        for b in browsers:
            await b.ws.close()
        return results

    got_exact, got_star, got_prefix, got_empty, got_talker = asyncio.run(scenario())
    assert topics(got_exact) == [BODHI, BODHI]
    assert got_exact[1]["body"] == {"from": "browser"}
    assert topics(got_star) == [BODHI, OVERRIDE, "org.fedoraproject.prod.bodhi.", BODHI]
    assert topics(got_prefix) == ["org.fedoraproject.prod.bodhi."]
    assert got_empty == []
    assert got_talker == []


def test_http_publish_token_and_errors(freescore, pub):
    fs = freescore(config(pub.port, "max_publish_body = 2048"))
    base = fs.url(0)
    send = http_sender(base)
    endpoint = base + "/fedmsg/publish"

    async def scenario():
        url = fs.url(0, "ws") + "/fedmsg"
        x1 = await Browser.open(url, "x1")
        x2 = await Browser.open(url, "x2")
        y = await Browser.open(url, "y")
        talker = await Browser.open(url, "talker")
        await x1.subscribe("org.x")
        await x2.subscribe("org.*", "org.x")
        await y.subscribe("org.y")
        browsers = [x1, x2, y, talker]
        for b in browsers:
            await b.ready(send)
        # client2server is off: this browser publish reaches no one.
        await talker.ws.send(json.dumps({"topic": "org.x", "body": {"from": "browser"}}))
        talker.probe = "probe.talker2."  # subscribed after the publish frame, so seen after it
        await talker.ready(send)
        r = requests.post(endpoint, json={"topic": "org.x", "body": {"a": 1}},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert (r.status_code, r.json()) == (200, {"status": "ok", "delivered": 2})
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = requests.post(endpoint, json={"topic": "org.x", "body": {"sneaky": 1}}, headers=headers, timeout=5)
            assert r.status_code == 401
            assert "error" in r.json()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for data in (b"not json", b"[]", b'{"topic":"","body":1}', b'{"body":1}', b'{"topic":"org.x"}'):
            r = requests.post(endpoint, data=data, headers=auth, timeout=5)
            assert r.status_code == 400, data
            assert "error" in r.json()
        r = requests.post(endpoint, json={"topic": "org.x", "body": "z" * 5000}, headers=auth, timeout=5)
        assert r.status_code == 413
        r = requests.get(endpoint, headers=auth, timeout=5)
        assert r.status_code == 405
        results = [await b.collect(send) for b in browsers]
        for b in browsers:
            await b.ws.close()
        return results

    got_x1, got_x2, got_y, got_talker = asyncio.run(scenario())
    assert got_x1 == [{"topic": "org.x", "body": {"a": 1}}]
    assert got_x2 == [{"topic": "org.x", "body": {"a": 1}}]
    assert got_y == [] and got_talker == []


def test_http_publish_is_off_without_token(freescore, pub):
    fs = freescore(f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[fedmsg]
endpoints = ["tcp://127.0.0.1:{pub.port}"]
""")
    r = requests.post(fs.url(0) + "/fedmsg/publish", json={"topic": "org.x", "body": 1},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code in (404, 426)
    assert requests.get(fs.url(0) + "/status", timeout=5).text == "OK"


def make_cert(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_wss_on_a_dedicated_root_listener(freescore, pub, tmp_path):
    cert, key = make_cert(tmp_path)
    fs = freescore(f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[[listen]]
name = "fedmsg"
endpoint = "tcp:0:interface=127.0.0.1"
certificate = "{cert}"
private_key = "{key}"

[fedmsg]
path = "/"
listen = ["fedmsg"]
endpoints = ["tcp://127.0.0.1:{pub.port}"]
publish_token = "{TOKEN}"
""")
    assert fs.url(1).startswith("https://")
    context = ssl.create_default_context(cafile=str(cert))
    send_zmq = zmq_sender(pub)
    send_http = http_sender(fs.url(1), verify=str(cert))

    async def scenario():
        root = await Browser.open(fs.url(1, "wss") + "/", "root", ssl=context)
        anywhere = await Browser.open(fs.url(1, "wss") + "/any/path", "anywhere", ssl=context)
        await root.subscribe("org.fedoraproject.prod.bodhi.*")
        await anywhere.subscribe("*")
        for b in (root, anywhere):
            await b.ready(send_zmq)
        send_zmq(BODHI, envelope(BODHI, 1))
        assert send_http(KOJI, envelope(KOJI, 2)) == {"status": "ok", "delivered": 1}
        results = [await b.collect(send_zmq) for b in (root, anywhere)]
        for b in (root, anywhere):
            await b.ws.close()
        return results

    got_root, got_anywhere = asyncio.run(scenario())
    assert topics(got_root) == [BODHI]
    assert topics(got_anywhere) == [BODHI, KOJI]
    # The shared plain listener does not carry the service; /status still answers on the TLS one.
    assert requests.get(fs.url(0) + "/fedmsg", timeout=5).status_code == 404
    assert requests.get(fs.url(1) + "/status", timeout=5, verify=str(cert)).text == "OK"


def test_bad_input_is_ignored_and_limits_hold(freescore, pub):
    fs = freescore(config(pub.port, "max_patterns = 10\nmax_pattern_length = 100\nmax_inbound_message = 65536"))
    send = zmq_sender(pub)

    async def scenario():
        url = fs.url(0, "ws") + "/fedmsg"
        b = await Browser.open(url, "bad")
        await b.subscribe(b.probe)  # an early pattern that fits under max_patterns
        for frame in ("not json", "[1]", '{"topic":5}', '{"body":"x"}', '{"topic":"__topic_subscribe__","body":["a"]}',
                      '{"topic":"__topic_subscribe__","body":null}', '{"topic":"__topic_unsubscribe__","body":7}'):
            await b.ws.send(frame)
        await b.ws.send(b"\x00\x01binary")
        await b.subscribe("x" * 101)  # longer than max_pattern_length: ignored
        await b.subscribe(*(f"t.{i}." for i in range(2000)))  # only t.0. .. t.8. fit
        await b.subscribe("t.0.")  # a duplicate changes nothing
        await b.ws.send(json.dumps({"topic": "__topic_unsubscribe__", "body": "t.1."}))
        # A fresh probe pattern subscribed last (it takes t.1.'s slot): seeing it proves every
        # frame above was handled (the first probe could arrive while they were still queued).
        b.probe = "probe.bad2."
        await b.ready(send)
        for topic in ("t.0.a", "t.1.a", "t.8.a", "t.9.a", "t.500.a", "x" * 101):
            send(topic, b"{}")
        got = await b.collect(send)
        # An oversized frame closes the connection with 1009.
        await b.ws.send("x" * 70000)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    await b.ws.recv()
        return got, closed.value.rcvd.code if closed.value.rcvd else None

    got, code = asyncio.run(scenario())
    assert topics(got) == ["t.0.a", "t.8.a"], fs.log()[-3000:]
    assert code == 1009
    fs.wait_log(r"reached 10 patterns")
    assert requests.get(fs.url(0) + "/status", timeout=5).text == "OK"


@pytest.mark.parametrize(
    "table, key",
    [
        ('endpoints = ["tcp://nohost"]', "fedmsg.endpoints[0]"),
        ('endpoints = ["http://x:1"]', "fedmsg.endpoints[0]"),
        ('subscribe_method = "bind"\nendpoints = ["tcp://localhost:5555"]', "fedmsg.endpoints[0]"),
        ('frobnicate = 1', "fedmsg.frobnicate"),
        ('path = "fedmsg"', "fedmsg.path"),
    ],
)
def test_bad_settings_stop_start_up(tmp_path, table, key):
    path = tmp_path / "bad.toml"
    path.write_text(f'[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[fedmsg]\n{table}\n')
    result = run_twistd(path)
    assert result.returncode != 0
    assert key in result.stdout + result.stderr


def test_slow_consumer_is_closed_and_others_unaffected(freescore, pub):
    import socket

    fs = freescore(config(pub.port, "max_outbound_buffer = 1048576"))
    send = zmq_sender(pub)
    chunk = json.dumps({"pad": "z" * 50000}).encode()

    async def scenario():
        url = fs.url(0, "ws") + "/fedmsg"
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", fs.port(0)))
        slow = await Browser.open(url, "slow", sock=sock, max_queue=1, max_size=None)
        fast = await Browser.open(url, "fast", max_size=None)
        for b in (slow, fast):
            await b.subscribe("bulk.")
            await b.ready(send)
        # The slow browser now reads nothing while 10 MB of matching traffic arrives; the fast
        # one reads each 500 kB burst before the next is sent, so only the slow one lags.
        got = []
        for _ in range(20):
            for _ in range(10):
                send("bulk.data", chunk)
            async with asyncio.timeout(TIMEOUT):
                for _ in range(10):
                    got.append(json.loads(await fast.ws.recv()))
        assert await fast.collect(send) == []
        fs.wait_log(r"more than 1048576 bytes unsent, closing \(1013\)")
        codes = []
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    await slow.ws.recv()
        except ConnectionClosed as e:
            codes.append(e.rcvd.code if e.rcvd else None)
        await fast.ws.close()
        return got, codes

    got, codes = asyncio.run(scenario())
    assert len(got) == 200
    assert codes in ([1013], [None])  # the close frame, unless the close handshake timed out first
    assert requests.get(fs.url(0) + "/status", timeout=5).text == "OK"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bind_method_and_publish_endpoints(freescore):
    sub_port, pub_port = free_port(), free_port()
    fs = freescore(f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[fedmsg]
subscribe_method = "bind"
endpoints = ["tcp://127.0.0.1:{sub_port}"]
publish_endpoints = ["tcp://127.0.0.1:{pub_port}"]
publish_token = "{TOKEN}"
""")
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)  # a fedmsg emitter connecting to freescore's bound SUB
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(f"tcp://127.0.0.1:{sub_port}")
    sub = ctx.socket(zmq.SUB)  # a ZeroMQ consumer of HTTP publishes
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{pub_port}")
    send_http = http_sender(fs.url(0))
    try:
        async def scenario():
            b = await Browser.open(fs.url(0, "ws") + "/fedmsg", "b")
            await b.subscribe("org.")
            await b.ready(lambda topic, body: pub.send_multipart([topic.encode(), body]))
            pub.send_multipart([b"org.zmq", b'{"via":"zmq"}'])
            got = await b.collect(lambda topic, body: pub.send_multipart([topic.encode(), body]))
            await b.ws.close()
            return got

        assert asyncio.run(scenario()) == [{"topic": "org.zmq", "body": {"via": "zmq"}}]
        # HTTP publishes also leave through the PUB socket (retry: the ZeroMQ slow joiner).
        for _ in range(100):
            send_http("org.http", b'{"via":"http"}')
            if sub.poll(100):
                assert sub.recv_multipart() == [b"org.http", b'{"via":"http"}']
                break
        else:
            raise AssertionError("nothing arrived on publish_endpoints")
    finally:
        pub.close(0)
        sub.close(0)
        ctx.term()


def test_bind_address_in_use_stops_start_up(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "busy.toml"
        path.write_text(f'[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[fedmsg]\n'
                        f'publish_endpoints = ["tcp://127.0.0.1:{port}"]\n')
        result = run_twistd(path)
    assert "fedmsg: cannot set up ZeroMQ" in result.stdout + result.stderr


def test_peer_that_never_pongs_is_dropped(freescore, pub):
    import base64
    import os
    import socket

    fs = freescore(config(pub.port, "keepalive = 0.5"))
    with socket.create_connection(("127.0.0.1", fs.port(0)), timeout=TIMEOUT) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /fedmsg HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        # Read (so pings arrive) but never answer them: the server must hang up on its own.
        received = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 101")
    assert b"\x89" in received  # at least one ping frame came before the drop
    fs.wait_log(r"answered no ping within 0.5s, dropping")


def test_a_publish_zeromq_or_browsers_cannot_take_is_refused_and_the_browser_stays(freescore, pub):
    """JSON lets a topic hold a lone surrogate (`"\\ud800"`), a ZeroMQ frame cannot: with
    `publish_endpoints` such a publish raised, a 500 over HTTP and a dropped browser. A number past
    double range (`1e999`) was re-encoded as `Infinity`, which browsers' JSON.parse refuses."""
    fs = freescore(config(pub.port, f'client2server = true\npublish_endpoints = ["tcp://127.0.0.1:{free_port()}"]'))
    send = zmq_sender(pub)
    for data, error in ((b'{"topic":"org.x\\ud800","body":1}', "lone surrogate"),
                        (b'{"topic":"org.x","body":[1e999]}', "out of range")):
        r = requests.post(fs.url(0) + "/fedmsg/publish", data=data,
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert r.status_code == 400 and error in r.json()["error"]

    async def scenario():
        url = fs.url(0, "ws") + "/fedmsg"
        watcher = await Browser.open(url, "watcher")
        talker = await Browser.open(url, "talker")
        await watcher.subscribe("org.")
        await watcher.ready(send)
        await talker.ws.send('{"topic":"org.x\\udfff","body":1}')
        await talker.ws.send('{"topic":"org.x","body":-1e999}')
        await talker.ws.send('{"topic":"org.y","body":2}')
        await talker.ready(send)  # still open, and its later frames count
        got = await watcher.collect(send)
        for b in (watcher, talker):
            await b.ws.close()
        return got

    assert asyncio.run(scenario()) == [{"topic": "org.y", "body": 2}]
    assert "Traceback" not in fs.log() and "Unhandled" not in fs.log()
